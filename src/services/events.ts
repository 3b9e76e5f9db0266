import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { NewEvent } from '../db/events.ts';
import { InvalidInputError, UnavailableError } from '../errors.ts';
import type { EventType } from '../generated/prisma/enums.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { EventsQueue } from '../workers/queues.ts';
import { type CategoryLookup, EventWriter } from './event-writer.ts';
import { checkBatchSize, checkId, checkJson } from './validation.ts';

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
}

export const TrackStatus = { ACCEPTED: 'ACCEPTED', DUPLICATE: 'DUPLICATE' } as const;
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

/** Checks one input and turns it into a row; throws InvalidInputError naming `path.field` and the rule. */
export function toNewEvent(input: EventInput, path: string, now: Date): NewEvent {
  const field = (name: string) => `${path}.${name}`;
  const eventId = input.eventId == null ? randomUUID() : checkId(field('eventId'), input.eventId);
  const userId = checkId(field('userId'), input.userId);
  const itemId = input.itemId == null ? null : checkId(field('itemId'), input.itemId);
  if (ITEM_EVENT_TYPES.has(input.type) && itemId === null) {
    throw new InvalidInputError(field('itemId'), 'required', `is required for ${input.type} events`);
  }
  let occurredAt = now;
  if (input.occurredAt != null) {
    // Only full ISO-8601 date-times: Date.parse alone would take "12" or "March 3".
    const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(input.occurredAt) ? Date.parse(input.occurredAt) : Number.NaN;
    if (Number.isNaN(ms)) {
      throw new InvalidInputError(
        field('occurredAt'),
        'format',
        'must be an ISO-8601 date-time, e.g. 2026-11-28T10:15:00Z',
      );
    }
    if (ms > now.getTime() + MAX_FUTURE_MS) {
      throw new InvalidInputError(field('occurredAt'), 'notFuture', 'must not be more than one day in the future');
    }
    occurredAt = new Date(ms);
  }
  const quantity = input.quantity ?? 1;
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
    throw new InvalidInputError(field('quantity'), 'range', `must be an integer from 1 to ${MAX_QUANTITY}`);
  }
  if (input.value != null && !(Number.isFinite(input.value) && Math.abs(input.value) < MAX_VALUE)) {
    throw new InvalidInputError(field('value'), 'range', `must be a finite amount below ${MAX_VALUE}`);
  }
  return {
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
}

/** Records shopper interactions: stored in Postgres first (that is the acknowledgement), then queued. */
export class EventService {
  readonly #writer: EventWriter;
  readonly #logger: Logger;
  readonly #maxBatch: number;
  readonly #metrics: Metrics;

  constructor(deps: {
    pool: pg.Pool;
    queue: EventsQueue;
    logger: Logger;
    metrics: Metrics;
    maxBatch: number;
    categoryOf: CategoryLookup;
  }) {
    this.#writer = new EventWriter(deps);
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#maxBatch = deps.maxBatch;
  }

  async track(input: EventInput): Promise<TrackResult> {
    let event: NewEvent;
    try {
      event = toNewEvent(input, 'input', new Date());
    } catch (error) {
      if (error instanceof InvalidInputError) this.#rejected(error);
      throw error;
    }
    const [result] = await this.#record([event]);
    return result!;
  }

  /**
   * Records a batch: each valid event is stored, each invalid one comes back as its InvalidInputError at the
   * same index. The batch as a whole fails only when it is too large or Postgres does not answer.
   */
  async trackMany(inputs: readonly EventInput[]): Promise<(TrackResult | InvalidInputError)[]> {
    checkBatchSize('inputs', inputs.length, this.#maxBatch);
    const now = new Date();
    const checked = inputs.map((input, index) => {
      try {
        return toNewEvent(input, `inputs[${index}]`, now);
      } catch (error) {
        if (!(error instanceof InvalidInputError)) throw error;
        this.#rejected(error);
        return error;
      }
    });
    const valid = checked.filter((entry): entry is NewEvent => !(entry instanceof InvalidInputError));
    const results = await this.#record(valid);
    let next = 0;
    return checked.map((entry) => (entry instanceof InvalidInputError ? entry : results[next++]!));
  }

  async #record(events: NewEvent[]): Promise<TrackResult[]> {
    let stored: boolean[];
    try {
      stored = await this.#writer.write(events);
    } catch (error) {
      this.#logger.error({ err: error }, 'storing events failed');
      throw new UnavailableError('postgres', 'the event store', error);
    }
    // Counted once Postgres has answered: a batch refused as a whole (too large, no database) counts nothing.
    let accepted = 0;
    for (const isNew of stored) if (isNew) accepted++;
    if (accepted) this.#metrics.events.inc({ outcome: 'accepted', rule: '' }, accepted);
    if (events.length > accepted)
      this.#metrics.events.inc({ outcome: 'duplicate', rule: '' }, events.length - accepted);
    return events.map(({ eventId }, index) => ({
      eventId,
      status: stored[index] ? TrackStatus.ACCEPTED : TrackStatus.DUPLICATE,
    }));
  }

  #rejected(error: InvalidInputError): void {
    this.#metrics.events.inc({ outcome: 'rejected', rule: error.rule ?? '' });
  }
}
