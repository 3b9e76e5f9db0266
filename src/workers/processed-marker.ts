import type { Db } from '../db/client.ts';
import { type EventOrigin, markEventsProcessed, type StoredEvent } from '../db/events.ts';
import type { Logger } from '../logger.ts';

type Processed = Pick<StoredEvent, 'eventId' | 'userId' | 'itemId' | 'occurredAt' | 'personal'> & {
  /** The experiment variant it is attributed to, if any. */
  origin?: EventOrigin | null;
};

/** How long processed events wait to be recorded together. */
const FLUSH_AFTER_MS = 100;
/** Recorded at once when this many are waiting. */
const FLUSH_AT = 1000;

/**
 * Records processed events (processedAt, their attribution and the shopper rows) in one statement per short
 * window instead of one per job: under load that turns hundreds of small transactions a second into a few,
 * which frees the CPU the freshness path needs. Nothing is lost if the process dies first: the events stay
 * unprocessed, the outbox sweep re-queues them and the shoppers' applied-id windows skip what was applied.
 */
export class ProcessedMarker {
  readonly #db: Db;
  readonly #logger: Logger;
  #waiting: Processed[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(deps: { db: Db; logger: Logger }) {
    this.#db = deps.db;
    this.#logger = deps.logger;
  }

  add(events: readonly Processed[]): void {
    if (events.length === 0) return;
    this.#waiting.push(...events);
    if (this.#waiting.length >= FLUSH_AT) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), FLUSH_AFTER_MS);
  }

  /** Records what is waiting; resolves when it (and any earlier flush) is written or has failed. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#waiting;
    this.#waiting = [];
    // One statement at a time, so rows are written in a stable order and concurrent batches cannot deadlock.
    this.#flushing = this.#flushing.then(async () => {
      try {
        await markEventsProcessed(this.#db, batch);
      } catch (error) {
        this.#logger.warn(
          { err: error, events: batch.length },
          'recording processed events failed; the sweep will retry',
        );
      }
    });
    return this.#flushing;
  }
}
