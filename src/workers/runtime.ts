import { Worker } from 'bullmq';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { findUnprocessedEventIds } from '../db/events.ts';
import { findCurrentModelVersion } from '../db/models.ts';
import type { Logger } from '../logger.ts';
import { PubSub } from '../realtime/pubsub.ts';
import { connectRedis, createRedis } from '../redis.ts';
import { rebuildFeatures } from '../services/feature-rebuild.ts';
import { FeatureStore } from '../services/features.ts';
import { NewItemVectors } from '../services/new-item-vectors.ts';
import { ShopperVectors } from '../services/shopper-vectors.ts';
import { readTunedParams } from '../services/training.ts';
import { ProcessedMarker } from './processed-marker.ts';
import { makeApplyEventsProcessor } from './processors/apply-events.ts';
import { makeTrainModelProcessor } from './processors/train-model.ts';
import {
  createEventsQueue,
  createTrainQueue,
  EVENTS_QUEUE,
  type EventJob,
  enqueueEvents,
  TRAIN_QUEUE,
  type TrainJob,
} from './queues.ts';

export interface Workers {
  /** Stops taking jobs, lets running ones finish, closes this role's connections. */
  stop(): Promise<void>;
}

/**
 * Starts the feature worker and the outbox sweep. Uses the caller's Prisma client (one pool per process)
 * and opens its own Redis connections.
 */
export async function startWorkers(config: Config, deps: { db: Db; logger: Logger }): Promise<Workers> {
  const { db, logger } = deps;
  const command = createRedis(config.REDIS_URL, 'command');
  const blocking = createRedis(config.REDIS_URL, 'blocking');
  const subscriber = createRedis(config.REDIS_URL, 'subscriber');
  const connections = [command, blocking, subscriber];
  for (const redis of connections) {
    redis.on('error', (error: Error) => logger.warn({ err: error.message }, 'worker redis connection error'));
  }
  try {
    await Promise.all(connections.map((redis) => connectRedis(redis, config.REDIS_URL)));
  } catch (error) {
    for (const redis of connections) redis.disconnect();
    throw error;
  }
  const features = FeatureStore.fromConfig(command, config);
  const pubsub = new PubSub({ publisher: command, subscriber, prefix: config.REDIS_PREFIX });
  const queue = createEventsQueue(command, config.REDIS_PREFIX);

  const newItems = new NewItemVectors({ redis: command, prefix: config.REDIS_PREFIX });
  const vectors = new ShopperVectors({ db, redis: command, prefix: config.REDIS_PREFIX, features, newItems });
  const stopFollowingModels = await pubsub.onModelActivated(({ versionId }) => {
    vectors
      .useVersion(versionId)
      .catch((error) => logger.error({ err: error, versionId }, 'loading a model for fold-in failed'));
  });
  const current = await findCurrentModelVersion(db);
  if (current) await vectors.useVersion(current.id);

  const processed = new ProcessedMarker({ db, logger });
  const processor = makeApplyEventsProcessor({
    db,
    features,
    vectors,
    pubsub,
    processed,
    logger,
    redis: command,
  });
  const worker = new Worker<EventJob>(EVENTS_QUEUE, processor, {
    connection: blocking,
    prefix: `${config.REDIS_PREFIX}:q`,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: config.WORKER_LOCK_MS,
  });
  const tuned = config.TRAIN_PARAMS_FILE ? await readTunedParams(config.TRAIN_PARAMS_FILE) : { params: {} };
  // Training blocks this process's event loop in places (index build), so its lock is generous.
  const trainQueue = createTrainQueue(command, config.REDIS_PREFIX);
  const trainer = new Worker<TrainJob, number>(
    TRAIN_QUEUE,
    makeTrainModelProcessor({
      db,
      pubsub,
      logger,
      options: {
        threads: config.TRAIN_THREADS,
        weights: config.EVENT_WEIGHTS,
        defaults: tuned.params,
        halfLifeDays: config.TRAIN_HALF_LIFE_DAYS ?? tuned.halfLifeDays,
        index: { M: config.HNSW_M, efConstruction: config.HNSW_EF_CONSTRUCTION, ef: config.HNSW_EF },
      },
    }),
    { connection: blocking, prefix: `${config.REDIS_PREFIX}:q`, concurrency: 1, lockDuration: 10 * 60_000 },
  );
  trainer.on('failed', (job, error) => logger.error({ jobId: job?.id, err: error }, 'training failed'));
  trainer.on('error', (error) => logger.error({ err: error }, 'training worker error'));
  if (config.TRAIN_INTERVAL_MINUTES > 0) {
    await trainQueue.upsertJobScheduler(
      'train',
      { every: config.TRAIN_INTERVAL_MINUTES * 60_000 },
      { name: 'train', data: {} },
    );
  } else {
    await trainQueue.removeJobScheduler('train');
  }

  worker.on('failed', (job, error) => logger.warn({ jobId: job?.id, err: error }, 'events job failed'));
  worker.on('error', (error) => logger.error({ err: error }, 'feature worker error'));

  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      const stale = await findUnprocessedEventIds(db, new Date(Date.now() - config.OUTBOX_GRACE_MS), 1000);
      if (stale.length) {
        // A fresh job id per sweep: an earlier job holding some of these ids must not swallow this one.
        await enqueueEvents(queue, { eventIds: stale }, { jobId: `sweep:${Date.now()}:${stale[0]}` });
        logger.info({ count: stale.length }, 'outbox sweep re-queued unprocessed events');
      }
    } catch (error) {
      logger.warn({ err: error }, 'outbox sweep failed; will retry');
    } finally {
      sweeping = false;
    }
  };

  // Redis keeps derived state only: when it comes back empty, replay the event log before serving from it.
  if (await features.needsRebuild()) {
    const replayed = await rebuildFeatures(db, features);
    if (replayed) logger.info({ events: replayed }, 'rebuilt online features from the event log');
  }
  const sweepTimer = setInterval(sweep, config.OUTBOX_SWEEP_INTERVAL_MS);

  return {
    async stop() {
      clearInterval(sweepTimer);
      await stopFollowingModels();
      await Promise.all([worker.close(), trainer.close()]);
      await processed.flush();
      await Promise.all([queue.close(), trainQueue.close()]);
      for (const redis of connections) redis.disconnect();
    },
  };
}
