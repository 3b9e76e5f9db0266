import os from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { withTimeout } from '../timeout.ts';
import type { EventJob, QueuedEvent } from './queues.ts';

/**
 * The freshness path from gateway to feature worker: a Redis Stream each gateway appends a stored batch to
 * once it is committed, read by every feature worker as one consumer group. A BullMQ job costs three
 * scripts (add, move to active, move to finished) and about twenty-five Redis commands; an entry here costs
 * one XADD, and a worker reads many at once and acknowledges them together. BullMQ stays the durable path
 * (the outbox sweep and replays queue there, with retries and backoff), and whatever this path misses (an
 * entry trimmed before it was read, a Redis that lost the stream, a batch that kept failing) is a row whose
 * processedAt is unset, which the sweep re-queues: every event is in Postgres before it is appended here,
 * and applying is idempotent.
 */

/** Consumer group all feature workers read in. */
const GROUP = 'feature-workers';
/**
 * Entries the stream keeps, read or not (trimmed approximately, on append). Acknowledged entries are deleted
 * at once, so this bounds only a backlog while no worker reads; what is trimmed then is left to the sweep.
 */
const MAX_ENTRIES = 2000;
/**
 * Larger batches (trackEvents imports) go to BullMQ instead: they are not what a shopper waits for, and an
 * entry's size times MAX_ENTRIES bounds the stream's memory (about 300 bytes an event, so 60 MB at most).
 */
export const MAX_LIVE_BATCH_EVENTS = 100;
/** Entries one read takes, combined into one batch for the worker. */
const READ_COUNT = 64;
/** How long a read blocks when nothing is there; also how long `stop` may wait for the loop to notice. */
const BLOCK_MS = 1000;
/** Failures of one batch before it is left to the outbox sweep (its BullMQ job retries with backoff). */
const MAX_ATTEMPTS = 5;
/** A consumer gone this long with nothing pending is removed from the group (workers that were restarted). */
const DEAD_CONSUMER_IDLE_MS = 60 * 60_000;

export function liveEventsKey(prefix: string): string {
  return `${prefix}:q:events-live`;
}

/** Appends a gateway's stored batch for the workers (after its commit; the caller handles failures). */
export class LiveEventsWriter {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = liveEventsKey(prefix);
  }

  /** Whether a batch of this many events goes this way (else it goes to the BullMQ queue). */
  static carries(events: number): boolean {
    return events > 0 && events <= MAX_LIVE_BATCH_EVENTS;
  }

  /** Rejects when Redis does not answer within `timeoutMs`; the events are stored, so the sweep queues them. */
  async append(job: EventJob, timeoutMs = 1000): Promise<void> {
    const adding = this.#redis.xadd(this.#key, 'MAXLEN', '~', MAX_ENTRIES, '*', 'job', JSON.stringify(job));
    await withTimeout(adding, timeoutMs, 'appending live events timed out');
  }
}

/**
 * Takes a shopper's events out of the stream (an erasure): an entry carrying only theirs is deleted; one
 * that also carries other shoppers' events is deleted and appended again without theirs (a worker may have
 * read it already: it then holds the entry, comes back to it without fields and lets it go, and those other
 * events are processed from the new entry). An entry a worker is applying right now is covered by the
 * erasure's tombstone. Returns how many of the shopper's events were taken out.
 */
export async function purgeLiveEvents(redis: Redis, prefix: string, userId: string): Promise<number> {
  const key = liveEventsKey(prefix);
  // The stream holds at most MAX_ENTRIES (trimmed approximately): one read sees it all.
  const entries = (await redis.xrange(key, '-', '+', 'COUNT', 2 * MAX_ENTRIES)) as [string, string[]][];
  let purged = 0;
  for (const [id, fields] of entries) {
    const job = parseEntry(fields);
    const events = job?.events ?? [];
    const theirs = events.filter((event) => event.userId === userId);
    if (!job || theirs.length === 0) continue;
    const gone = new Set(theirs.map(({ eventId }) => eventId));
    const kept: EventJob = {
      eventIds: job.eventIds.filter((eventId) => !gone.has(eventId)),
      events: events.filter((event) => event.userId !== userId),
    };
    const pipeline = redis.pipeline().xdel(key, id);
    if (kept.eventIds.length > 0) pipeline.xadd(key, '*', 'job', JSON.stringify(kept));
    await pipeline.exec();
    purged += theirs.length;
  }
  return purged;
}

/** An entry as XREADGROUP returns it; a held entry deleted meanwhile (trimmed) comes back without fields. */
type Entry = [id: string, fields: string[] | null];
type ReadReply = [stream: string, entries: Entry[]][] | null;

/**
 * One worker's reader: takes new entries (or, after a failure, its own unacknowledged ones), applies them as
 * one batch, acknowledges and deletes them. `claimStale` (called by the worker's sweep) takes over entries
 * that another consumer read and never acknowledged (it died), and removes long-gone consumers.
 */
export class LiveEventsReader {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #logger: Logger;
  readonly #apply: (job: EventJob, queuedAt: number) => Promise<void>;
  readonly #retryLater: (error: unknown) => boolean;
  readonly #consumer = `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  #stopped = false;
  #loop: Promise<void> | undefined;
  /** Whether this consumer holds entries it read and has not acknowledged (read them again first). */
  #holding = true;
  #attempts = 0;
  #failing = false;

  constructor(deps: {
    /** A connection of the reader's own: its reads block. */
    redis: Redis;
    prefix: string;
    logger: Logger;
    apply: (job: EventJob, queuedAt: number) => Promise<void>;
    /** A failure to wait out rather than count (a replay of the log is running). */
    retryLater: (error: unknown) => boolean;
  }) {
    this.#redis = deps.redis;
    this.#key = liveEventsKey(deps.prefix);
    this.#logger = deps.logger;
    this.#apply = deps.apply;
    this.#retryLater = deps.retryLater;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops reading; resolves once the batch in hand (if any) is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        const entries = await this.#read();
        if (entries.length > 0) await this.#handle(entries);
        this.#recovered();
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('NOGROUP')) {
          await this.#createGroup().catch(() => undefined);
          continue;
        }
        // Logged once per spell of failures, not per attempt.
        if (!this.#failing) this.#logger.warn({ err: error }, 'reading live events failed; retrying');
        this.#failing = true;
        await sleep(500);
      }
    }
  }

  #recovered(): void {
    if (this.#failing) this.#logger.info('reading live events works again');
    this.#failing = false;
  }

  async #createGroup(): Promise<void> {
    try {
      // From the stream's start: entries a gateway appended before the first worker came are read too.
      await this.#redis.xgroup('CREATE', this.#key, GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
  }

  /** New entries, or the ones this consumer holds unacknowledged (after a failure or a claim). */
  async #read(): Promise<Entry[]> {
    const holding = this.#holding;
    // ioredis types stream replies loosely (unknown): this is XREADGROUP's documented shape.
    const reply = (await (holding
      ? this.#redis.xreadgroup('GROUP', GROUP, this.#consumer, 'COUNT', READ_COUNT, 'STREAMS', this.#key, '0')
      : this.#redis.xreadgroup(
          'GROUP',
          GROUP,
          this.#consumer,
          'COUNT',
          READ_COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.#key,
          '>',
        ))) as ReadReply;
    const entries = reply?.[0]?.[1] ?? [];
    // Entries trimmed away while held come back without fields: the sweep re-queues their events.
    const kept = entries.filter(([, fields]) => fields !== null);
    if (holding && entries.length === 0) this.#holding = false;
    if (holding && kept.length < entries.length) {
      await this.#ack(entries.filter(([, fields]) => fields === null).map(([id]) => id));
    }
    return kept;
  }

  async #handle(entries: Entry[]): Promise<void> {
    const ids = entries.map(([id]) => id);
    const jobs = entries.flatMap(([id, fields]) => {
      const job = fields && parseEntry(fields);
      if (!job) this.#logger.warn({ entry: id }, 'a live events entry is not a batch of events; skipped');
      return job ? [job] : [];
    });
    const batch: EventJob = { eventIds: jobs.flatMap((job) => job.eventIds), events: [] };
    for (const job of jobs) {
      if (job.events && batch.events) batch.events.push(...job.events);
      // One entry without its events (never from this version's gateways) and the worker reads all back.
      else batch.events = undefined;
    }
    const queuedAt = Number(ids[0]?.split('-')[0] ?? Date.now());
    try {
      if (batch.eventIds.length > 0) await this.#apply(batch, queuedAt);
    } catch (error) {
      this.#holding = true;
      if (this.#retryLater(error)) {
        await sleep(250);
        return;
      }
      this.#attempts++;
      if (this.#attempts < MAX_ATTEMPTS) {
        this.#logger.warn({ err: error, events: batch.eventIds.length, attempt: this.#attempts }, 'live events failed');
        await sleep(100 * 2 ** this.#attempts);
        return;
      }
      // Unprocessed in Postgres, so the outbox sweep queues them on BullMQ, which retries with its own backoff.
      this.#logger.warn({ err: error, events: batch.eventIds.length }, 'live events keep failing; left to the sweep');
    }
    this.#attempts = 0;
    await this.#ack(ids);
  }

  async #ack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#redis
      .pipeline()
      .xack(this.#key, GROUP, ...ids)
      .xdel(this.#key, ...ids)
      .exec();
  }

  /**
   * Takes over entries other consumers read more than `idleMs` ago and never acknowledged (a worker that died
   * mid-batch), for this reader to apply next; removes consumers gone for an hour with nothing pending.
   */
  async claimStale(idleMs: number): Promise<number> {
    // XAUTOCLAIM … JUSTID answers [next cursor, claimed ids, deleted ids] (typed unknown by ioredis).
    const [, claimed] = (await this.#redis.xautoclaim(
      this.#key,
      GROUP,
      this.#consumer,
      idleMs,
      '0-0',
      'COUNT',
      READ_COUNT,
      'JUSTID',
    )) as [string, string[]];
    if (claimed.length > 0) this.#holding = true;
    const consumers = (await this.#redis.xinfo('CONSUMERS', this.#key, GROUP)) as unknown[]; // one reply per consumer
    for (const consumer of consumers) {
      const info = fieldsOf(consumer);
      if (info.name !== this.#consumer && Number(info.pending) === 0 && Number(info.idle) > DEAD_CONSUMER_IDLE_MS) {
        await this.#redis.xgroup('DELCONSUMER', this.#key, GROUP, String(info.name));
      }
    }
    return claimed.length;
  }

  /** Entries appended and not yet acknowledged (read or not): the stream's backlog. */
  static async backlog(redis: Redis, prefix: string): Promise<number> {
    return redis.xlen(liveEventsKey(prefix));
  }
}

/** XINFO's flat [name, value, …] reply as an object. */
function fieldsOf(reply: unknown): Record<string, unknown> {
  const flat = Array.isArray(reply) ? reply : [];
  const fields: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[String(flat[i])] = flat[i + 1];
  return fields;
}

/** The job a gateway appended, checked for the shape the worker relies on; null when it is not one. */
function parseEntry(fields: string[]): EventJob | null {
  const at = fields.indexOf('job');
  if (at < 0 || at % 2 !== 0) return null;
  let job: unknown;
  try {
    job = JSON.parse(fields[at + 1] ?? '');
  } catch {
    return null;
  }
  if (typeof job !== 'object' || job === null) return null;
  const { eventIds, events } = job as { eventIds?: unknown; events?: unknown };
  if (!Array.isArray(eventIds) || !eventIds.every((id) => typeof id === 'string')) return null;
  if (events === undefined) return { eventIds };
  if (!Array.isArray(events) || !events.every(isQueuedEvent)) return null;
  return { eventIds, events };
}

function isQueuedEvent(value: unknown): value is QueuedEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Record<string, unknown>;
  return (
    typeof event.eventId === 'string' &&
    typeof event.userId === 'string' &&
    typeof event.type === 'string' &&
    typeof event.occurredAt === 'string' &&
    typeof event.receivedAt === 'string' &&
    (event.id === undefined || typeof event.id === 'string') &&
    (event.itemId === null || typeof event.itemId === 'string') &&
    (event.category === null || typeof event.category === 'string') &&
    (event.recommendationId === undefined || typeof event.recommendationId === 'string')
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
