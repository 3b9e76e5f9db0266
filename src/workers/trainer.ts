import { Worker } from 'bullmq';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { findCurrentModelVersion } from '../db/models.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { PubSub } from '../realtime/pubsub.ts';
import { connectRoleConnections } from '../redis.ts';
import { ShopperIds } from '../services/shopper-ids.ts';
import { hasTrainingData, readPinnedParams } from '../services/training.ts';
import { makeTrainModelProcessor } from './processors/train-model.ts';
import { createTrainQueue, requestTraining, TRAIN_QUEUE, type TrainJob, type TrainResult } from './queues.ts';

export interface Trainer {
  /** Stops taking trainings, lets a running one finish, closes this role's connections. */
  stop(): Promise<void>;
}

/**
 * Starts the trainer role: takes training jobs (the schedule, `retrainModel`, the end of the demo load) one
 * at a time across every trainer process (BullMQ global concurrency 1), trains, stores the version and
 * announces it. Meant for a process of its own: fitting and the index build are CPU-bound and would stall
 * any event loop that also serves requests or events.
 */
export async function startTrainer(
  config: Config,
  deps: { db: Db; logger: Logger; metrics: Metrics },
): Promise<Trainer> {
  const { db, logger, metrics } = deps;
  const connections = await connectRoleConnections(config.REDIS_URL, (error) => {
    metrics.dependencyErrors.inc({ dependency: 'redis' });
    logger.warn({ err: error.message }, 'trainer redis connection error');
  });
  const { command, queues, blocking, subscriber } = connections;
  const pubsub = new PubSub({ publisher: command, subscriber, prefix: config.REDIS_PREFIX });
  const queue = createTrainQueue(queues, config.REDIS_PREFIX);
  // One training at a time across all trainer replicas: two would compete for the same two cores.
  await queue.setGlobalConcurrency(1);
  const pinned = config.TRAIN_PARAMS_FILE ? await readPinnedParams(config.TRAIN_PARAMS_FILE) : {};
  const worker = new Worker<TrainJob, TrainResult>(
    TRAIN_QUEUE,
    makeTrainModelProcessor({
      db,
      pubsub,
      logger,
      metrics,
      options: {
        threads: config.TRAIN_THREADS,
        weights: config.EVENT_WEIGHTS,
        pinned,
        model: config.TRAIN_MODEL,
        search: config.TUNE_SEARCH,
        budgetSeconds: config.TUNE_BUDGET_SECONDS,
        neighbours: config.MODEL_NEIGHBOURS,
        easeMaxItems: config.EASE_MAX_ITEMS,
        halfLifeDays: config.TRAIN_HALF_LIFE_DAYS,
        index: { M: config.HNSW_M, efConstruction: config.HNSW_EF_CONSTRUCTION, ef: config.HNSW_EF },
        pinMargin: config.MODEL_PIN_MARGIN,
        ids: new ShopperIds(config.USER_ID_KEY),
        personalByDefault: config.CONSENT_DEFAULT === 'granted',
      },
    }),
    // The index build holds this process's event loop for seconds at a time: a generous lock keeps the job.
    { connection: blocking, prefix: `${config.REDIS_PREFIX}:q`, concurrency: 1, lockDuration: 10 * 60_000 },
  );
  worker.on('failed', (job, error) => logger.error({ jobId: job?.id, err: error }, 'training failed'));
  worker.on('error', (error) => logger.error({ err: error }, 'trainer error'));
  if (config.TRAIN_INTERVAL_MINUTES > 0) {
    await queue.upsertJobScheduler(
      'train',
      { every: config.TRAIN_INTERVAL_MINUTES * 60_000 },
      { name: 'train', data: {} },
    );
    // A shop with data and no model yet should not wait a whole interval for its first one.
    if (!(await findCurrentModelVersion(db)) && (await hasTrainingData(db, config.EVENT_WEIGHTS))) {
      if (await requestTraining(queue)) logger.info('no model yet: training one now');
    }
  } else {
    await queue.removeJobScheduler('train');
  }
  const unwatchQueues = metrics.watchQueues([queue]);
  return {
    async stop() {
      unwatchQueues();
      await worker.close();
      await queue.close();
      connections.disconnect();
    },
  };
}
