import { Worker } from 'bullmq';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { findUnprocessedEventIds, markEventsUnprocessedSince } from '../db/events.ts';
import { findCurrentModelVersion } from '../db/models.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { PubSub } from '../realtime/pubsub.ts';
import { connectRoleConnections, createRedis } from '../redis.ts';
import { EventAttributor, RecommendationIds, recommendationIdKey } from '../services/experiment-ids.ts';
import { FeatureCheckpoint } from '../services/feature-checkpoint.ts';
import { FeatureStore, ReplayRunningError } from '../services/features.ts';
import { ItemAdmission } from '../services/item-admission.ts';
import { NewItemVectors } from '../services/new-item-vectors.ts';
import { ReplayStatus } from '../services/replay-status.ts';
import { ShopperVectors } from '../services/shopper-vectors.ts';
import { LiveEventsReader } from './live-events.ts';
import { ProcessedMarker } from './processed-marker.ts';
import { makeEventsApplier } from './processors/apply-events.ts';
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

/** Entries unacknowledged this long belong to a worker that died (a batch takes well under a second). */
const LIVE_CLAIM_IDLE_MS = 30_000;
/** Stream readers per worker process (see below). */
const LIVE_READERS = 4;
/**
 * Taken off a checkpoint's time before events processed since are applied again: the checkpoint carries the
 * worker's clock, processedAt Postgres's, and a processedAt is written up to a batch window after its effects.
 */
const CHECKPOINT_MARGIN_MS = 10_000;
/** Longest pause between two prunings of stale placeholders (shorter when the window is shorter). */
const MAX_PRUNE_INTERVAL_MS = 10 * 60_000;

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
  const { command, queues, blocking, subscriber } = connections;
  const features = FeatureStore.fromConfig(command, config);
  const pubsub = new PubSub({ publisher: command, subscriber, prefix: config.REDIS_PREFIX });
  const queue = createEventsQueue(queues, config.REDIS_PREFIX);

  const newItems = new NewItemVectors({ redis: command, prefix: config.REDIS_PREFIX });
  const vectors = new ShopperVectors({ db, redis: command, features, newItems, logger });
  // Cold items (never touched) get vectors from their content: for the whole catalogue when a version starts
  // serving here, and for the items a catalogue change names; the gateways add them to their index.
  const announce = async (derived: { versionId: number; newItemIds: string[] } | undefined) => {
    if (derived?.newItemIds.length)
      await pubsub.publishItemVectorsAdded({ versionId: derived.versionId, itemIds: derived.newItemIds });
  };
  const useVersion = async (versionId: number) => {
    await vectors.useVersion(versionId);
    await announce(await vectors.deriveColdItems());
  };
  const stopFollowingModels = await pubsub.onModelActivated(({ versionId }) => {
    useVersion(versionId).catch((error) =>
      logger.error({ err: error, versionId }, 'loading a model for fold-in failed'),
    );
  });
  const stopFollowingCatalogue = await pubsub.onCatalogChanged(({ itemIds }) => {
    vectors
      .deriveColdItems(itemIds)
      .then(announce)
      .catch((error) => logger.warn({ err: error }, 'deriving content vectors for cold items failed'));
  });
  const current = await findCurrentModelVersion(db);
  if (current) await useVersion(current.id);

  const processed = new ProcessedMarker({ db, logger });
  const admission = new ItemAdmission({ db, maxPlaceholders: config.MAX_PLACEHOLDER_ITEMS });
  const apply = makeEventsApplier({
    db,
    features,
    admission,
    vectors,
    pubsub,
    processed,
    attributor: new EventAttributor(
      new RecommendationIds(recommendationIdKey(config).key),
      metrics.experimentAttributions,
    ),
    logger,
    redis: command,
  });
  // The freshness path: the gateways' stored batches, read from a stream (see live-events.ts). A few readers,
  // each a consumer of its own on a connection of its own: while one waits on Redis or Postgres for its batch,
  // another applies the next, as BullMQ's concurrency does for jobs.
  const readers = Array.from({ length: LIVE_READERS }, () => {
    const connection = createRedis(config.REDIS_URL, 'blocking');
    connection.on('error', (error) => logger.warn({ err: error.message }, 'live events connection error'));
    const reader = new LiveEventsReader({
      redis: connection,
      prefix: config.REDIS_PREFIX,
      logger,
      apply,
      retryLater: (error) => error instanceof ReplayRunningError,
    });
    reader.start();
    return { reader, connection };
  });
  // LIVE_READERS is at least 1; the first reader also claims what dead workers left.
  const live = readers[0]!.reader;
  // The durable path: the sweep's re-queued events and large batches, with BullMQ's retries and backoff.
  const worker = new Worker<EventJob>(EVENTS_QUEUE, (job) => apply(job.data, job.timestamp), {
    connection: blocking,
    prefix: `${config.REDIS_PREFIX}:q`,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: config.WORKER_LOCK_MS,
  });
  const replayQueue = createReplayQueue(queues, config.REDIS_PREFIX);
  const replayStatus = new ReplayStatus(command, config.REDIS_PREFIX);
  const replayer = new Worker<ReplayJob, number>(
    REPLAY_QUEUE,
    makeReplayProcessor({ db, features, admission, events: queue, status: replayStatus, logger }),
    { connection: blocking, prefix: `${config.REDIS_PREFIX}:q`, concurrency: 1 },
  );
  replayer.on('failed', (job, error) => logger.error({ jobId: job?.id, err: error }, 'replay failed'));
  replayer.on('error', (error) => logger.error({ err: error }, 'replay worker error'));

  worker.on('failed', (job, error) => logger.warn({ jobId: job?.id, err: error }, 'events job failed'));
  worker.on('error', (error) => logger.error({ err: error }, 'feature worker error'));

  const checkpoint = new FeatureCheckpoint(command, config.REDIS_PREFIX);
  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      // A replay applies the whole log (and records it processed); re-queuing its rows meanwhile is waste.
      if (await replayPending(replayQueue)) {
        checkpoint.reset();
        return;
      }
      // Checked continuously, not only at start: a Redis that restarted empty (or was flushed) under a running
      // worker has lost the marker a replay writes last, and one replay brings every feature back.
      if (await features.needsRebuild()) {
        checkpoint.reset();
        logger.warn('Redis lost the online features (no layout marker); replaying the event log');
        await requestReplay(replayQueue, 'Redis lost the features while workers ran');
        return;
      }
      // A Redis back with only its older writes (AOF everysec, a lagging replica) keeps the marker: this worker's
      // own checkpoint reads back older than it wrote. Events recorded processed since then may have lost their
      // effects; marked unprocessed, the sweep queues them again and the applied-id windows skip what survived.
      const verdict = await checkpoint.verify();
      if (verdict.kind === 'rewound') {
        const since = new Date(verdict.since.getTime() - CHECKPOINT_MARGIN_MS);
        const count = await markEventsUnprocessedSince(db, since);
        logger.warn(
          { since: since.toISOString(), events: count },
          'Redis came back without its latest writes; applying again the events processed since its checkpoint',
        );
      }
      // Entries a worker read and never acknowledged (it died): this one applies them next.
      await live.claimStale(LIVE_CLAIM_IDLE_MS).catch((error: unknown) => {
        // No group yet (no worker has read): nothing to claim.
        if (!(error instanceof Error && error.message.startsWith('NOGROUP'))) throw error;
      });
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
  // Every worker prunes; a second one finds nothing left to delete.
  const placeholderWindowMs = config.PLACEHOLDER_WINDOW_HOURS * 3600_000;
  const prune = async () => {
    try {
      const pruned = await admission.prune(placeholderWindowMs);
      if (pruned.length === 0) return;
      await features.forgetItems(pruned);
      logger.info({ count: pruned.length }, 'pruned placeholder items never declared within the window');
    } catch (error) {
      logger.warn({ err: error }, 'pruning placeholder items failed; will retry');
    }
  };
  const pruneTimer = setInterval(prune, Math.min(MAX_PRUNE_INTERVAL_MS, placeholderWindowMs / 2));
  const unwatchQueues = metrics.watchQueues([queue]);

  return {
    async stop() {
      clearInterval(sweepTimer);
      clearInterval(pruneTimer);
      unwatchQueues();
      await stopFollowingModels();
      await stopFollowingCatalogue();
      await Promise.all([...readers.map(({ reader }) => reader.stop()), worker.close(), replayer.close()]);
      for (const { connection } of readers) connection.disconnect();
      await processed.flush();
      await Promise.all([queue.close(), replayQueue.close()]);
      connections.disconnect();
    },
  };
}
