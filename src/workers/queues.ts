import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { EventType } from '../generated/prisma/enums.ts';
import { withTimeout } from '../timeout.ts';

/** Queue of stored events waiting for the feature worker. */
export const EVENTS_QUEUE = 'events';

/** What the feature worker needs of a stored event, as the gateway that stored it queues it. */
export interface QueuedEvent {
  /**
   * The log's sequence number (Event.id, a bigint in decimal): the feature worker's idempotence key. Jobs
   * queued by a gateway of the earlier version lack it; the worker reads those events back from Postgres.
   */
  id?: string;
  eventId: string;
  userId: string;
  type: EventType;
  itemId: string | null;
  /** The item's category in the catalogue when the event was stored. */
  category: string | null;
  /** ISO-8601. */
  occurredAt: string;
  /** ISO-8601, as Postgres stored it. */
  receivedAt: string;
  /** The list id the event carried, when it carried one: the worker attributes it to an experiment variant. */
  recommendationId?: string;
}

/**
 * Payload of an events job: the events stored by one call (one for trackEvent, up to a batch for
 * trackEvents) or re-queued by the outbox sweep. The gateway's jobs carry the stored events themselves, so
 * the worker does not read them back on the freshness path; the sweep's jobs carry ids only and the worker
 * reads those rows from Postgres, the source of truth.
 */
export interface EventJob {
  eventIds: string[];
  events?: QueuedEvent[];
}

export type EventsQueue = Queue<EventJob, void, 'apply'>;

/** Queue of model trainings: the schedule and `retrainModel` add to it; one job trains one ModelVersion. */
export const TRAIN_QUEUE = 'train';

/** Payload of a training job. */
export interface TrainJob {
  /** Overrides of the ALS parameters for this training only. */
  params?: Record<string, number>;
}

/**
 * What a training job returns: the version it stored (and whether it became current; a pinned version can
 * keep serving), or why it trained nothing (no interactions yet: training waits for data).
 */
export type TrainResult =
  | { outcome: 'TRAINED'; versionId: number; activated: boolean }
  | { outcome: 'SKIPPED'; reason: string };

export type TrainQueue = Queue<TrainJob, TrainResult, 'train'>;

export function createTrainQueue(connection: Redis, prefix: string): TrainQueue {
  return new Queue<TrainJob, TrainResult, 'train'>(TRAIN_QUEUE, {
    connection,
    prefix: `${prefix}:q`,
    defaultJobOptions: {
      attempts: 2,
      backoff: { type: 'fixed', delay: 5000 },
      removeOnComplete: 100,
      removeOnFail: 100,
    },
  });
}

/**
 * Queues a training unless one is already waiting or running (a burst of requests trains once). Returns
 * whether it queued one.
 */
export async function requestTraining(queue: TrainQueue): Promise<boolean> {
  // Not 'delayed': the schedule always holds its next run there, up to TRAIN_INTERVAL_MINUTES away.
  const counts = await queue.getJobCounts('waiting', 'active', 'prioritized');
  if (Object.values(counts).some((count) => count > 0)) return false;
  await queue.add('train', {});
  return true;
}

/** Queue of full replays of the event log into Redis (start-up on an empty Redis, after the demo load). */
export const REPLAY_QUEUE = 'replay';

/** Payload of a replay job: why it was asked for, for the log. */
export interface ReplayJob {
  reason: string;
}

export type ReplayQueue = Queue<ReplayJob, number, 'replay'>;

export function createReplayQueue(connection: Redis, prefix: string): ReplayQueue {
  return new Queue<ReplayJob, number, 'replay'>(REPLAY_QUEUE, { connection, prefix: `${prefix}:q` });
}

/**
 * Asks a feature worker to replay the whole event log. One job id: while a replay waits or runs, a second
 * request joins it; a finished job is removed so the next request queues anew.
 */
export async function requestReplay(queue: ReplayQueue, reason: string): Promise<void> {
  await queue.add(
    'replay',
    { reason },
    {
      jobId: 'replay',
      attempts: 5,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: true,
      removeOnFail: true,
    },
  );
}

/** Whether a replay is waiting or running: the outbox sweep leaves the log to it meanwhile. */
export async function replayPending(queue: ReplayQueue): Promise<boolean> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  return Object.values(counts).some((count) => count > 0);
}

/**
 * Job options: retried with backoff; a finished job is deleted at once (keeping a window of them costs Redis
 * work on every completion, and a repeated trackEvent never re-queues: its insert is a DUPLICATE).
 */
export const EVENT_JOB_OPTIONS = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 200 },
  removeOnComplete: true,
  removeOnFail: { count: 5000 },
} as const;

export function createEventsQueue(connection: Redis, prefix: string): EventsQueue {
  return new Queue<EventJob, void, 'apply'>(EVENTS_QUEUE, { connection, prefix: `${prefix}:q` });
}

/**
 * Queues stored events for the feature worker as one job. Its id is the single event's id, or derived from the
 * first event's id for a batch, so a retried call does not queue the same events twice (`jobId` overrides).
 * Rejects when Redis does not answer in time; the events are stored already, so the outbox sweep queues them.
 */
export async function enqueueEvents(
  queue: EventsQueue,
  job: EventJob,
  options: { jobId?: string; timeoutMs?: number } = {},
) {
  const { eventIds } = job;
  const [first] = eventIds;
  if (first === undefined) return;
  const jobId = options.jobId ?? (eventIds.length === 1 ? first : `batch:${first}:${eventIds.length}`);
  const adding = queue.add('apply', job, { ...EVENT_JOB_OPTIONS, jobId });
  await withTimeout(adding, options.timeoutMs ?? 1000, 'enqueue timed out');
}
