import { Worker } from 'bullmq';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { findUnprocessedEventIds } from '../db/events.ts';
import { findCurrentModelVersion } from '../db/models.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { PubSub } from '../realtime/pubsub.ts';
import { connectRoleConnections } from '../redis.ts';
import { FeatureStore } from '../services/features.ts';
import { NewItemVectors } from '../services/new-item-vectors.ts';
import { ReplayStatus } from '../services/replay-status.ts';
import { ShopperVectors } from '../services/shopper-vectors.ts';
import { ProcessedMarker } from './processed-marker.ts';
import { makeApplyEventsProcessor } from './processors/apply-events.ts';
import { makeReplayProcessor } from './processors/replay-events.ts';
import {
  createEventsQueue,
  createReplayQueue,
  EVENTS_QUEUE,
  type EventJob,
  enqueueEvents,
  REPLAY_QUEUE,
  type ReplayJob,
  replayPending,
  requestReplay,
} from './queues.ts';

export interface Workers {
  /** Stops taking jobs, lets running ones finish, closes this role's connections. */
  stop(): Promise<void>;
}

/**
 * Starts the feature worker, the replay worker and the outbox sweep. Uses the caller's Prisma client (one
 * pool per process) and opens its own Redis connections. Training is not here: it runs in the trainer
 * process (`src/trainer.ts`), so its CPU never stalls event processing.
 */
export async function startWorkers(
  config: Config,
  deps: { db: Db; logger: Logger; metrics: Metrics },
): Promise<Workers> {
  const { db, logger, metrics } = deps;
  const connections = await connectRoleConnections(config.REDIS_URL, (error) => {
    metrics.dependencyErrors.inc({ dependency: 'redis' });
    logger.warn({ err: error.message }, 'worker redis connection error');
  });
  const { command, blocking, subscriber } = connections;
  const features = FeatureStore.fromConfig(command, config);
  const pubsub = new PubSub({ publisher: command, subscriber, prefix: config.REDIS_PREFIX });
  const queue = createEventsQueue(command, config.REDIS_PREFIX);

  const newItems = new NewItemVectors({ redis: command, prefix: config.REDIS_PREFIX });
  const vectors = new ShopperVectors({ db, redis: command, features, newItems });
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
  const replayQueue = createReplayQueue(command, config.REDIS_PREFIX);
  const replayStatus = new ReplayStatus(command, config.REDIS_PREFIX);
  const replayer = new Worker<ReplayJob, number>(
    REPLAY_QUEUE,
    makeReplayProcessor({ db, features, events: queue, status: replayStatus, logger }),
    { connection: blocking, prefix: `${config.REDIS_PREFIX}:q`, concurrency: 1 },
  );
  replayer.on('failed', (job, error) => logger.error({ jobId: job?.id, err: error }, 'replay failed'));
  replayer.on('error', (error) => logger.error({ err: error }, 'replay worker error'));

  worker.on('failed', (job, error) => logger.warn({ jobId: job?.id, err: error }, 'events job failed'));
  worker.on('error', (error) => logger.error({ err: error }, 'feature worker error'));

  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      // A replay applies the whole log (and records it processed); re-queuing its rows meanwhile is waste.
      if (await replayPending(replayQueue)) return;
      // Checked continuously, not only at start: a Redis that restarted empty (or was flushed) under a running
      // worker has lost the marker a replay writes last, and one replay brings every feature back.
      if (await features.needsRebuild()) {
        logger.warn('Redis lost the online features (no layout marker); replaying the event log');
        await requestReplay(replayQueue, 'Redis lost the features while workers ran');
        return;
      }
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

  // Redis keeps derived state only: when it comes back empty (or holds an older layout), one worker replays
  // the event log in the background.
  if (await features.needsRebuild()) await requestReplay(replayQueue, 'Redis lacks the current features');
  // A replay pauses the events queue; one that died for good must not leave it paused.
  else if (!(await replayPending(replayQueue)) && (await queue.isPaused())) await queue.resume();
  const sweepTimer = setInterval(sweep, config.OUTBOX_SWEEP_INTERVAL_MS);
  const unwatchQueues = metrics.watchQueues([queue]);

  return {
    async stop() {
      clearInterval(sweepTimer);
      unwatchQueues();
      await stopFollowingModels();
      await Promise.all([worker.close(), replayer.close()]);
      await processed.flush();
      await Promise.all([queue.close(), replayQueue.close()]);
      connections.disconnect();
    },
  };
}
