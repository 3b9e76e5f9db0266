import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** Queue of stored events waiting for the feature worker. */
export const EVENTS_QUEUE = 'events';

/** Payload of an events job: the row is read back from Postgres, the source of truth. */
export interface EventJob {
  eventId: string;
}

export type EventsQueue = Queue<EventJob, void, 'apply'>;

/** Job options: retried with backoff, and finished jobs do not pile up in Redis. */
export const EVENT_JOB_OPTIONS = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 200 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 5000 },
} as const;

export function createEventsQueue(connection: Redis, prefix: string): EventsQueue {
  return new Queue<EventJob, void, 'apply'>(EVENTS_QUEUE, { connection, prefix: `${prefix}:q` });
}

/**
 * Queues the events for the feature worker, at most once each (jobId = eventId). Rejects when Redis does not
 * answer in time; the events are stored already, so the outbox sweep queues them later.
 */
export async function enqueueEvents(queue: EventsQueue, eventIds: readonly string[], timeoutMs = 1000) {
  if (eventIds.length === 0) return;
  const jobs = eventIds.map((eventId) => ({
    name: 'apply' as const,
    data: { eventId },
    opts: { ...EVENT_JOB_OPTIONS, jobId: eventId },
  }));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`enqueue timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([
      jobs.length === 1 ? queue.add('apply', jobs[0]!.data, jobs[0]!.opts) : queue.addBulk(jobs),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
