import type { Job } from 'bullmq';
import type { Db } from '../../db/client.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics.ts';
import type { PubSub } from '../../realtime/pubsub.ts';
import { type TrainingOptions, trainModelVersion } from '../../services/training.ts';
import type { TrainJob, TrainResult } from '../queues.ts';

/**
 * Trains a new model version from the event log; when it becomes current, tells every gateway to load it.
 * With no interactions in the log yet it trains nothing and says so (the next request or schedule tries
 * again), instead of failing.
 */
export function makeTrainModelProcessor(deps: {
  db: Db;
  pubsub: PubSub;
  logger: Logger;
  metrics: Metrics;
  options: Omit<TrainingOptions, 'params'>;
}) {
  return async (job: Job<TrainJob>): Promise<TrainResult> => {
    const endTimer = deps.metrics.trainingDuration.startTimer();
    try {
      const outcome = await trainModelVersion(deps.db, deps.logger, { ...deps.options, params: job.data.params });
      if ('skipped' in outcome) {
        deps.logger.info({ jobId: job.id, reason: outcome.skipped }, 'training skipped');
        deps.metrics.trainings.inc({ outcome: 'skipped' });
        return { outcome: 'SKIPPED', reason: outcome.skipped };
      }
      if (outcome.activated) await deps.pubsub.publishModelActivated({ versionId: outcome.version.id });
      deps.metrics.trainings.inc({ outcome: 'succeeded' });
      return { outcome: 'TRAINED', versionId: outcome.version.id, activated: outcome.activated };
    } catch (error) {
      deps.metrics.trainings.inc({ outcome: 'failed' });
      throw error;
    } finally {
      endTimer();
    }
  };
}
