import type { Job } from 'bullmq';
import type { Db } from '../../db/client.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics.ts';
import type { PubSub } from '../../realtime/pubsub.ts';
import { type TrainingOptions, trainModelVersion } from '../../services/training.ts';
import type { TrainJob } from '../queues.ts';

/** Trains a new model version from the event log, makes it current and tells every gateway to load it. */
export function makeTrainModelProcessor(deps: {
  db: Db;
  pubsub: PubSub;
  logger: Logger;
  metrics: Metrics;
  options: Omit<TrainingOptions, 'params'>;
}) {
  return async (job: Job<TrainJob>): Promise<number> => {
    const endTimer = deps.metrics.trainingDuration.startTimer();
    try {
      const version = await trainModelVersion(deps.db, deps.logger, { ...deps.options, params: job.data.params });
      await deps.pubsub.publishModelActivated({ versionId: version.id });
      deps.metrics.trainings.inc({ outcome: 'succeeded' });
      return version.id;
    } catch (error) {
      deps.metrics.trainings.inc({ outcome: 'failed' });
      throw error;
    } finally {
      endTimer();
    }
  };
}
