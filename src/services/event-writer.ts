import type pg from 'pg';
import { insertEvents, type NewEvent, type StoredRow } from '../db/events.ts';
import type { Logger } from '../logger.ts';
import { type EventsQueue, enqueueEvents, type QueuedEvent } from '../workers/queues.ts';

interface Pending {
  events: readonly NewEvent[];
  resolve: (stored: boolean[]) => void;
  reject: (error: unknown) => void;
}

/** Most statements in flight at once; calls arriving meanwhile wait and go together in the next one. */
const MAX_IN_FLIGHT = 4;
/** Most events one statement carries. */
const MAX_EVENTS_PER_STATEMENT = 5000;

/** The catalogue category of an item, when the catalogue knows it. */
export type CategoryLookup = (itemId: string) => string | null;

/**
 * Writes events to the log, combining the calls that arrive together into one INSERT and one queue job.
 * Under load, each commit (and its WAL flush) then serves many requests; when idle a call is written at once.
 * A call's promise resolves once Postgres has committed its events: that is the acknowledgement. Queueing
 * follows and may fail; the outbox sweep catches up on whatever it missed. The job carries the stored events
 * (with their item's category), so the worker starts on them without reading them back.
 */
export class EventWriter {
  readonly #pool: pg.Pool;
  readonly #queue: EventsQueue;
  readonly #logger: Logger;
  readonly #categoryOf: CategoryLookup;
  #waiting: Pending[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(deps: { pool: pg.Pool; queue: EventsQueue; logger: Logger; categoryOf: CategoryLookup }) {
    this.#pool = deps.pool;
    this.#queue = deps.queue;
    this.#logger = deps.logger;
    this.#categoryOf = deps.categoryOf;
  }

  /** Stores the events; for each, whether it was new (false: its eventId was stored before or earlier in line). */
  write(events: readonly NewEvent[]): Promise<boolean[]> {
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ events, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= MAX_IN_FLIGHT || this.#waiting.length === 0) return;
    this.#scheduled = true;
    // One turn of the event loop lets the requests that arrived together join the same statement.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#inFlight >= MAX_IN_FLIGHT || this.#waiting.length === 0) return;
    const group: Pending[] = [];
    let size = 0;
    while (
      this.#waiting.length &&
      (group.length === 0 || size + this.#waiting[0]!.events.length <= MAX_EVENTS_PER_STATEMENT)
    ) {
      const next = this.#waiting.shift()!;
      group.push(next);
      size += next.events.length;
    }
    this.#inFlight++;
    this.#schedule();
    try {
      const accepted = await this.#insert(group);
      const job = { eventIds: accepted.map(({ eventId }) => eventId), events: accepted };
      await enqueueEvents(this.#queue, job).catch((error) => {
        this.#logger.warn(
          { err: error, events: accepted.length },
          'queueing stored events failed; the sweep will retry',
        );
      });
    } finally {
      this.#inFlight--;
      this.#schedule();
    }
  }

  /** Inserts the group's events together; if that fails, each call alone, so one bad call fails by itself. */
  async #insert(group: Pending[]): Promise<QueuedEvent[]> {
    let stored: Map<string, StoredRow>;
    try {
      stored = await insertEvents(
        this.#pool,
        group.flatMap((pending) => pending.events),
      );
    } catch (error) {
      if (group.length === 1) {
        group[0]!.reject(error);
        return [];
      }
      const accepted = await Promise.all(group.map((pending) => this.#insert([pending])));
      return accepted.flat();
    }
    const accepted: QueuedEvent[] = [];
    for (const pending of group) {
      // The first occurrence of a new eventId is the one stored; any later one, in any call, is a duplicate.
      pending.resolve(
        pending.events.map((event) => {
          const row = stored.get(event.eventId);
          if (!row) return false;
          stored.delete(event.eventId);
          accepted.push({
            id: row.id.toString(),
            eventId: event.eventId,
            userId: event.userId,
            type: event.type,
            itemId: event.itemId,
            category: event.itemId === null ? null : this.#categoryOf(event.itemId),
            occurredAt: event.occurredAt.toISOString(),
            receivedAt: row.receivedAt.toISOString(),
          });
          return true;
        }),
      );
    }
    return accepted;
  }
}
