import type pg from 'pg';
import { insertEvents, type NewEvent, type StoredRow } from '../db/events.ts';
import type { Logger } from '../logger.ts';
import { LiveEventsWriter } from '../workers/live-events.ts';
import { type EventsQueue, enqueueEvents, type QueuedEvent } from '../workers/queues.ts';

/**
 * What became of one event: `stored` now, `seen` (its eventId was stored before or earlier in line), or
 * `refused` by Postgres as data it cannot store (SQLSTATE class 22 or 23), alone, after its batch failed.
 */
export type WriteOutcome = 'stored' | 'seen' | 'refused';

interface Pending {
  events: readonly NewEvent[];
  resolve: (outcomes: WriteOutcome[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Most statements in flight at once; calls arriving meanwhile wait and go together in the next one. Two, not
 * more: each statement also makes a queue job and a worker batch, so under load fewer, fuller statements
 * cost less per event all the way to the push; a second one keeps a slow commit from holding everyone.
 */
export const MAX_IN_FLIGHT = 2;
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
  readonly #live: LiveEventsWriter | undefined;
  readonly #logger: Logger;
  readonly #categoryOf: CategoryLookup;
  readonly #maxWaiting: number;
  #waiting: Pending[] = [];
  /** Events in `#waiting`. */
  #waitingEvents = 0;
  #inFlight = 0;
  #scheduled = false;

  constructor(deps: {
    pool: pg.Pool;
    queue: EventsQueue;
    /** The lean hand-off to the workers (config EVENT_HANDOFF=stream); without it every batch is a queue job. */
    live?: LiveEventsWriter;
    logger: Logger;
    categoryOf: CategoryLookup;
    /** Most events waiting for a statement; a call beyond it is refused at once (config PG_MAX_WAITING_EVENTS). */
    maxWaiting: number;
  }) {
    this.#pool = deps.pool;
    this.#maxWaiting = deps.maxWaiting;
    this.#queue = deps.queue;
    this.#live = deps.live;
    this.#logger = deps.logger;
    this.#categoryOf = deps.categoryOf;
  }

  /** Stores the events; says for each what became of it. Rejects when Postgres does not answer. */
  write(events: readonly NewEvent[]): Promise<WriteOutcome[]> {
    if (events.length === 0) return Promise.resolve([]);
    // Postgres is not keeping up (or not answering): shed the load now rather than answer it late.
    if (this.#waitingEvents > 0 && this.#waitingEvents + events.length > this.#maxWaiting) {
      return Promise.reject(new Error(`${this.#waitingEvents} events already wait for the event store`));
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push({ events, resolve, reject });
      this.#waitingEvents += events.length;
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
      this.#waitingEvents -= next.events.length;
      group.push(next);
      size += next.events.length;
    }
    this.#inFlight++;
    this.#schedule();
    try {
      const accepted = await this.#insert(group);
      const job = { eventIds: accepted.map(({ eventId }) => eventId), events: accepted };
      const handOff =
        this.#live && LiveEventsWriter.carries(accepted.length)
          ? this.#live.append(job)
          : enqueueEvents(this.#queue, job);
      await handOff.catch((error) => {
        this.#logger.warn(
          { err: error, events: accepted.length },
          'handing stored events to the workers failed; the sweep will retry',
        );
      });
    } finally {
      this.#inFlight--;
      this.#schedule();
    }
  }

  /**
   * Inserts the group's events together; if that fails, each call alone, so one bad call fails by itself.
   * A call that Postgres refuses as data is retried event by event, so only the bad event is refused.
   */
  async #insert(group: Pending[]): Promise<QueuedEvent[]> {
    let stored: Map<string, StoredRow>;
    try {
      stored = await insertEvents(
        this.#pool,
        group.flatMap((pending) => pending.events),
      );
    } catch (error) {
      if (group.length > 1) {
        const accepted = await Promise.all(group.map((pending) => this.#insert([pending])));
        return accepted.flat();
      }
      const pending = group[0]!;
      if (!isDataError(error)) {
        pending.reject(error);
        return [];
      }
      return this.#insertOneByOne(pending, error);
    }
    const accepted: QueuedEvent[] = [];
    for (const pending of group) {
      // The first occurrence of a new eventId is the one stored; any later one, in any call, is a duplicate.
      pending.resolve(
        pending.events.map((event) => {
          const row = stored.get(event.eventId);
          if (!row) return 'seen';
          stored.delete(event.eventId);
          accepted.push(this.#queued(event, row));
          return 'stored';
        }),
      );
    }
    return accepted;
  }

  /** One statement per event (rare: only after Postgres refused a call's data), in order, so repeats stay `seen`. */
  async #insertOneByOne(pending: Pending, batchError: unknown): Promise<QueuedEvent[]> {
    if (pending.events.length === 1) {
      this.#refused(pending.events[0]!, batchError);
      pending.resolve(['refused']);
      return [];
    }
    const outcomes: WriteOutcome[] = [];
    const accepted: QueuedEvent[] = [];
    for (const event of pending.events) {
      try {
        const row = (await insertEvents(this.#pool, [event])).get(event.eventId);
        if (row) accepted.push(this.#queued(event, row));
        outcomes.push(row ? 'stored' : 'seen');
      } catch (error) {
        if (!isDataError(error)) {
          // Those stored so far are queued; the call fails, and its retry finds them DUPLICATE.
          pending.reject(error);
          return accepted;
        }
        this.#refused(event, error);
        outcomes.push('refused');
      }
    }
    pending.resolve(outcomes);
    return accepted;
  }

  #refused(event: NewEvent, error: unknown): void {
    this.#logger.warn(
      // Never the shopper id or the context: logs carry no personal data.
      { err: error, eventId: event.eventId },
      'postgres refused an event as data; it alone is refused',
    );
  }

  #queued(event: NewEvent, row: StoredRow): QueuedEvent {
    return {
      id: row.id.toString(),
      eventId: event.eventId,
      userId: event.userId,
      type: event.type,
      itemId: event.itemId,
      category: event.itemId === null ? null : this.#categoryOf(event.itemId),
      occurredAt: event.occurredAt.toISOString(),
      receivedAt: row.receivedAt.toISOString(),
      // Left out when absent, so the hand-off of events outside lists carries no extra field.
      ...(event.recommendationId === null ? {} : { recommendationId: event.recommendationId }),
    };
  }
}

/**
 * Postgres refused the values, not the request: data exceptions (class 22: bad encoding, out of range) and
 * integrity violations (class 23). Connection failures, timeouts and cancellations are other classes.
 */
export function isDataError(error: unknown): boolean {
  const code = error instanceof Error && 'code' in error ? error.code : undefined;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}
