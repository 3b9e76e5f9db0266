import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { findEventPayloads, type NewEvent, type StoredPayload } from '../db/events.ts';
import { InvalidInputError, OverloadedError, UnavailableError } from '../errors.ts';
import type { EventType } from '../generated/prisma/enums.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { LiveEventsWriter } from '../workers/live-events.ts';
import type { EventsQueue } from '../workers/queues.ts';
import type { ConsentService } from './consent.ts';
import { type CategoryLookup, EventWriter, type WriteOutcome } from './event-writer.ts';
import type { IngestBacklog } from './ingest-backlog.ts';
import type { ShopperIds } from './shopper-ids.ts';
import { checkBatchSize, checkId, checkJson, parseIsoDateTime } from './validation.ts';

/** An interaction as a storefront sends it. */
export interface EventInput {
  eventId?: string | null;
  userId: string;
  type: EventType;
  itemId?: string | null;
  sessionId?: string | null;
  /** ISO-8601; defaults to the time the gateway received it. */
  occurredAt?: string | null;
  quantity?: number | null;
  value?: number | null;
  context?: unknown;
  recommendationId?: string | null;
  /**
   * The shopper's consent to personalisation as of this event (as `setConsent` before it); omitted: as they
   * last said, or CONSENT_DEFAULT. Not part of the stored event.
   */
  consent?: boolean | null;
}

/**
 * What became of a tracked event. ACCEPTED: stored now. DUPLICATE: this eventId was stored before with the same
 * payload (a retry); nothing changed. CONFLICT: this eventId was stored before with a different payload; the
 * first is kept and this one is not stored.
 */
export const TrackStatus = { ACCEPTED: 'ACCEPTED', DUPLICATE: 'DUPLICATE', CONFLICT: 'CONFLICT' } as const;
export type TrackStatus = (typeof TrackStatus)[keyof typeof TrackStatus];

export interface TrackResult {
  eventId: string;
  status: TrackStatus;
}

/** Every current event type concerns one product. */
const ITEM_EVENT_TYPES: ReadonlySet<EventType> = new Set([
  'VIEW',
  'CLICK',
  'ADD_TO_CART',
  'REMOVE_FROM_CART',
  'PURCHASE',
]);
const MAX_FUTURE_MS = 24 * 3600_000;
const MAX_QUANTITY = 1_000_000;
const MAX_VALUE = 1e10;

/** A checked input: the row to store, and whether the client gave its time (else it is the time of receipt). */
export interface CheckedEvent {
  row: NewEvent;
  path: string;
  timeGiven: boolean;
  /** The consent the event carries, if any (not stored with it). */
  consent: boolean | null;
}

/**
 * Checks one input and turns it into a row; throws InvalidInputError naming `path.field` and the rule.
 * `minOccurredAt` is the earliest time an event may claim (config MIN_OCCURRED_AT); `internalId` checks the
 * shopper id and gives the one to store (ShopperIds#internal).
 */
export function toNewEvent(
  input: EventInput,
  path: string,
  now: Date,
  minOccurredAt: Date,
  internalId: (field: string, userId: string) => string = checkId,
): CheckedEvent {
  const field = (name: string) => `${path}.${name}`;
  const eventId = input.eventId == null ? randomUUID() : checkId(field('eventId'), input.eventId);
  // Checked as sent, then (with USER_ID_KEY) replaced by its pseudonym: nothing below sees the shop's id.
  const userId = internalId(field('userId'), input.userId);
  const itemId = input.itemId == null ? null : checkId(field('itemId'), input.itemId);
  if (ITEM_EVENT_TYPES.has(input.type) && itemId === null) {
    throw new InvalidInputError(field('itemId'), 'required', `is required for ${input.type} events`);
  }
  let occurredAt = now;
  if (input.occurredAt != null) {
    const parsed = parseIsoDateTime(input.occurredAt);
    if (!parsed) {
      throw new InvalidInputError(
        field('occurredAt'),
        'format',
        'must be an ISO-8601 date-time, e.g. 2026-11-28T10:15:00Z',
      );
    }
    if (parsed.getTime() > now.getTime() + MAX_FUTURE_MS) {
      throw new InvalidInputError(field('occurredAt'), 'notFuture', 'must not be more than one day in the future');
    }
    if (parsed < minOccurredAt) {
      throw new InvalidInputError(field('occurredAt'), 'range', `must not be before ${minOccurredAt.toISOString()}`);
    }
    occurredAt = parsed;
  }
  const quantity = input.quantity ?? 1;
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
    throw new InvalidInputError(field('quantity'), 'range', `must be an integer from 1 to ${MAX_QUANTITY}`);
  }
  // Checked as stored (two decimals), so 9999999999.999 cannot round up past the column's numeric(12, 2).
  if (input.value != null && !(Number.isFinite(input.value) && Math.abs(Number(input.value.toFixed(2))) < MAX_VALUE)) {
    throw new InvalidInputError(field('value'), 'range', `must be a finite amount below ${MAX_VALUE}`);
  }
  const row: NewEvent = {
    eventId,
    userId,
    type: input.type,
    itemId,
    sessionId: input.sessionId == null ? null : checkId(field('sessionId'), input.sessionId),
    quantity,
    value: input.value == null ? null : input.value.toFixed(2),
    occurredAt,
    context: checkJson(field('context'), input.context ?? null),
    recommendationId:
      input.recommendationId == null ? null : checkId(field('recommendationId'), input.recommendationId),
  };
  return { row, path, timeGiven: input.occurredAt != null, consent: input.consent ?? null };
}

/**
 * Whether two JSON values are equal as JSON: jsonb keeps no key order, and a literal in the query arrives as
 * objects without a prototype, so neither order nor prototype counts.
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  }
  const other = new Map(Object.entries(b));
  const entries = Object.entries(a);
  return (
    entries.length === other.size && entries.every(([key, value]) => other.has(key) && sameJson(value, other.get(key)))
  );
}

/** Whether a repeated eventId carries the stored event (a retry) rather than a different one. */
function samePayload(sent: CheckedEvent, stored: StoredPayload): boolean {
  const { row } = sent;
  return (
    row.userId === stored.userId &&
    row.type === stored.type &&
    row.itemId === stored.itemId &&
    row.sessionId === stored.sessionId &&
    row.quantity === stored.quantity &&
    (row.value === null
      ? stored.value === null
      : stored.value !== null && Number(row.value) === Number(stored.value)) &&
    // Without a time the row took its time of receipt; a retry of it comes at another time.
    (!sent.timeGiven || row.occurredAt.getTime() === stored.occurredAt.getTime()) &&
    sameJson(row.context ?? null, stored.context ?? null) &&
    row.recommendationId === stored.recommendationId
  );
}

/** Records shopper interactions: stored in Postgres first (that is the acknowledgement), then queued. */
export class EventService {
  readonly #writer: EventWriter;
  readonly #logger: Logger;
  readonly #maxBatch: number;
  readonly #metrics: Metrics;
  readonly #pool: pg.Pool;
  readonly #minOccurredAt: Date;
  readonly #backlog: IngestBacklog | undefined;
  readonly #consent: ConsentService | undefined;
  readonly #internalId: (field: string, userId: string) => string;

  constructor(deps: {
    pool: pg.Pool;
    /** Earliest occurredAt an event may claim (config MIN_OCCURRED_AT). */
    minOccurredAt: Date;
    queue: EventsQueue;
    /** The lean hand-off to the workers, when configured (see EventWriter). */
    live?: LiveEventsWriter;
    logger: Logger;
    metrics: Metrics;
    maxBatch: number;
    categoryOf: CategoryLookup;
    /** Most events waiting for an ingest statement (config PG_MAX_WAITING_EVENTS). */
    maxWaiting: number;
    /** Back-pressure from the workers' backlog; none means events are always taken. */
    backlog?: IngestBacklog;
    /** Records the consent events carry; without it `EventInput.consent` is ignored. */
    consent?: ConsentService;
    /** Pseudonymises shopper ids (USER_ID_KEY); without it they are stored as sent. */
    ids?: ShopperIds;
  }) {
    this.#backlog = deps.backlog;
    this.#consent = deps.consent;
    const { ids } = deps;
    this.#internalId = ids ? (field, userId) => ids.internal(field, userId) : checkId;
    this.#writer = new EventWriter(deps);
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#maxBatch = deps.maxBatch;
    this.#pool = deps.pool;
    this.#minOccurredAt = deps.minOccurredAt;
  }

  async track(input: EventInput): Promise<TrackResult> {
    let event: CheckedEvent;
    try {
      event = toNewEvent(input, 'input', new Date(), this.#minOccurredAt, this.#internalId);
    } catch (error) {
      if (error instanceof InvalidInputError) this.#rejected(error);
      throw error;
    }
    await this.#recordConsent([event]);
    const [result] = await this.#record([event]);
    if (result instanceof InvalidInputError) throw result;
    return result!;
  }

  /**
   * Records a batch: each valid event is stored, each invalid one comes back as its InvalidInputError at the
   * same index (so does one Postgres refuses to store). The batch as a whole fails only when it is too large
   * or Postgres does not answer.
   */
  async trackMany(inputs: readonly EventInput[]): Promise<(TrackResult | InvalidInputError)[]> {
    checkBatchSize('inputs', inputs.length, this.#maxBatch);
    const now = new Date();
    const checked = inputs.map((input, index) => {
      try {
        return toNewEvent(input, `inputs[${index}]`, now, this.#minOccurredAt, this.#internalId);
      } catch (error) {
        if (!(error instanceof InvalidInputError)) throw error;
        this.#rejected(error);
        return error;
      }
    });
    const valid = checked.filter((entry): entry is CheckedEvent => !(entry instanceof InvalidInputError));
    await this.#recordConsent(valid);
    const results = await this.#record(valid);
    let next = 0;
    return checked.map((entry) => (entry instanceof InvalidInputError ? entry : results[next++]!));
  }

  async #record(events: CheckedEvent[]): Promise<(TrackResult | InvalidInputError)[]> {
    if (events.length > 0 && this.#backlog?.over) throw new OverloadedError(this.#backlog.maxEvents);
    let outcomes: WriteOutcome[];
    let stored: Map<string, StoredPayload>;
    try {
      outcomes = await this.#writer.write(events.map(({ row }) => row));
      // One more statement, only for a batch with repeated eventIds: retry or conflict?
      const seen = events.filter((_, index) => outcomes[index] === 'seen').map(({ row }) => row.eventId);
      stored = seen.length ? await findEventPayloads(this.#pool, seen) : new Map();
    } catch (error) {
      this.#logger.error({ err: error }, 'storing events failed');
      throw new UnavailableError('postgres', 'the event store', error);
    }
    // Counted once Postgres has answered: a batch refused as a whole (too large, no database) counts nothing.
    const counts = { accepted: 0, duplicate: 0, conflict: 0 };
    const results = events.map((event, index): TrackResult | InvalidInputError => {
      const { eventId } = event.row;
      const outcome = outcomes[index];
      if (outcome === 'stored') {
        counts.accepted++;
        return { eventId, status: TrackStatus.ACCEPTED };
      }
      if (outcome === 'seen') {
        const first = stored.get(eventId);
        // Gone since (a privacy deletion): nothing to conflict with; the retry is answered as before.
        if (!first || samePayload(event, first)) {
          counts.duplicate++;
          return { eventId, status: TrackStatus.DUPLICATE };
        }
        counts.conflict++;
        return { eventId, status: TrackStatus.CONFLICT };
      }
      const error = new InvalidInputError(event.path, 'format', 'Postgres cannot store this event as sent');
      this.#rejected(error);
      return error;
    });
    for (const [outcome, count] of Object.entries(counts)) {
      if (count) this.#metrics.events.inc({ outcome, rule: '' }, count);
    }
    return results;
  }

  /**
   * Records the consent valid events carry before they are stored (the last one per shopper in a batch), so
   * the worker treats them by it. Only a change costs more than a statement.
   */
  async #recordConsent(events: readonly CheckedEvent[]): Promise<void> {
    const consent = this.#consent;
    if (!consent) return;
    const choices = new Map<string, boolean>();
    for (const { row, consent: given } of events) if (given !== null) choices.set(row.userId, given);
    await Promise.all(
      [...choices].map(([userId, personalization]) => consent.set(userId, personalization, { onlyOnChange: true })),
    );
  }

  #rejected(error: InvalidInputError): void {
    this.#metrics.events.inc({ outcome: 'rejected', rule: error.rule ?? '' });
  }
}
