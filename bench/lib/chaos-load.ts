import { randomUUID } from 'node:crypto';

/** The event types the load sends, with how often (REMOVE_FROM_CART weighs 0 and shapes no feature). */
const TYPES = [
  { type: 'VIEW', share: 0.6 },
  { type: 'CLICK', share: 0.2 },
  { type: 'ADD_TO_CART', share: 0.12 },
  { type: 'PURCHASE', share: 0.08 },
] as const;
export type LoadEventType = (typeof TYPES)[number]['type'];

/** One event as the load sends it (no occurredAt: the gateway stamps it, so a retry is a plain DUPLICATE). */
export interface LoadEvent {
  eventId: string;
  userId: string;
  type: LoadEventType;
  itemId: string;
  sessionId: string;
}

/** What a gateway answered for one event. */
export const Answer = {
  ACCEPTED: 'ACCEPTED',
  DUPLICATE: 'DUPLICATE',
  CONFLICT: 'CONFLICT',
  /** `INVALID_INPUT` or another coded refusal of this one event: the load sends only valid events. */
  REFUSED: 'REFUSED',
  /** No answer (connection refused or reset, timeout, `UNAVAILABLE`): the client retries. */
  RETRY: 'RETRY',
} as const;
export type Answer = (typeof Answer)[keyof typeof Answer];

/** What the load saw, per eventId and in total. */
export class Ledger {
  /** Every answer per eventId, in order. */
  readonly answers = new Map<string, Answer[]>();
  requests = 0;
  /** Requests without an answer (network error, timeout, UNAVAILABLE), each retried. */
  retried = 0;
  /** Requests that took longer than `slowMs` to answer (or fail). */
  slow = 0;
  /** Events the load gave up on: never ACCEPTED or DUPLICATE within the retry deadline. */
  readonly unacknowledged = new Set<string>();

  record(eventId: string, answer: Answer): void {
    const seen = this.answers.get(eventId);
    if (seen) seen.push(answer);
    else this.answers.set(eventId, [answer]);
  }

  /** EventIds answered ACCEPTED or DUPLICATE at least once: the gateway promised to keep these. */
  acknowledged(): Set<string> {
    const ids = new Set<string>();
    for (const [eventId, answers] of this.answers) {
      if (answers.some((answer) => answer === Answer.ACCEPTED || answer === Answer.DUPLICATE)) ids.add(eventId);
    }
    return ids;
  }

  count(answer: Answer): number {
    let total = 0;
    for (const answers of this.answers.values()) total += answers.filter((seen) => seen === answer).length;
    return total;
  }

  /** EventIds answered ACCEPTED more than once: each would be a second copy stored. */
  acceptedTwice(): number {
    let total = 0;
    for (const answers of this.answers.values()) {
      if (answers.filter((answer) => answer === Answer.ACCEPTED).length > 1) total++;
    }
    return total;
  }
}

const TRACK = `mutation($input: EventInput!) { trackEvent(input: $input) { eventId status } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { eventId status } }`;

interface GraphqlError {
  path?: (string | number)[];
  extensions?: { code?: string };
}
interface TrackBody {
  data?: {
    trackEvent?: { eventId: string; status: string } | null;
    trackEvents?: ({ eventId: string; status: string } | null)[] | null;
  } | null;
  errors?: GraphqlError[];
}

const asAnswer = (status: string | undefined): Answer =>
  status === Answer.ACCEPTED || status === Answer.DUPLICATE || status === Answer.CONFLICT ? status : Answer.REFUSED;

/** Sends events once (trackEvent for one, trackEvents for more) and returns each event's answer. */
async function trackOnce(url: string, events: readonly LoadEvent[], timeoutMs: number): Promise<Answer[]> {
  const single = events.length === 1;
  let body: TrackBody;
  try {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(
        single
          ? { query: TRACK, variables: { input: events[0] } }
          : { query: TRACK_MANY, variables: { inputs: events } },
      ),
      signal: AbortSignal.timeout(timeoutMs),
    });
    body = (await response.json()) as TrackBody;
  } catch {
    return events.map(() => Answer.RETRY);
  }
  const codeAt = (index: number) =>
    body.errors?.find((error) => (single ? true : error.path?.[1] === index))?.extensions?.code;
  const wholeCall = body.errors?.find((error) => !single && error.path?.length !== 2)?.extensions?.code;
  return events.map((_, index) => {
    const result = single ? body.data?.trackEvent : body.data?.trackEvents?.[index];
    if (result) return asAnswer(result.status);
    const code = codeAt(index) ?? wholeCall;
    return code === 'UNAVAILABLE' || code === undefined ? Answer.RETRY : Answer.REFUSED;
  });
}

/**
 * A storefront under faults: sends events at a steady rate to the gateways in turn, as single trackEvent calls
 * and trackEvents batches, and retries whatever got no answer (on the other gateway, with backoff) until it
 * is ACCEPTED or DUPLICATE, recording every answer in the ledger. Each shopper touches each item at most
 * once, so a feature counted twice shows as a doubled history weight of one (shopper, item) pair.
 */
export class ChaosLoad {
  readonly ledger = new Ledger();
  /** Every event generated, by eventId (the duplicate flood resends some). */
  readonly sent = new Map<string, LoadEvent>();
  readonly #gateways: readonly string[];
  readonly #rate: number;
  readonly #shoppers: { userId: string; items: string[]; next: number }[];
  readonly #batchShare: number;
  readonly #batchSize: number;
  readonly #maxInFlight: number;
  readonly #retryDeadlineMs: number;
  readonly #requestTimeoutMs: number;
  readonly #slowMs: number;
  readonly #inFlight = new Set<Promise<void>>();
  #random: () => number;
  #nextGateway = 0;
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(options: {
    gateways: readonly string[];
    /** Events per second. */
    rate: number;
    shoppers: number;
    items: readonly string[];
    /** Largest number of events per shopper (each a different item): keep it below the applied-id window. */
    eventsPerShopper: number;
    seed: number;
  }) {
    this.#gateways = options.gateways;
    this.#rate = options.rate;
    let state = options.seed;
    this.#random = () => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
    this.#shoppers = Array.from({ length: options.shoppers }, (_, index) => ({
      userId: `shopper-${index}`,
      items: this.#shuffled(options.items).slice(0, options.eventsPerShopper),
      next: 0,
    }));
    this.#batchShare = 0.3;
    this.#batchSize = 10;
    this.#maxInFlight = 64;
    this.#retryDeadlineMs = 180_000;
    this.#requestTimeoutMs = 30_000;
    this.#slowMs = 15_000;
  }

  /** Starts sending at the rate until `stop()`. */
  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stops making new events, then waits for those in flight to be acknowledged (or given up). */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
    await Promise.all([...this.#inFlight]);
  }

  /** Sends these events (with retries) apart from the rate and resolves with each one's final answers. */
  async deliver(events: readonly LoadEvent[]): Promise<void> {
    for (const event of events) if (!this.sent.has(event.eventId)) this.sent.set(event.eventId, event);
    let pending = [...events];
    const deadline = Date.now() + this.#retryDeadlineMs;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (Date.now() > deadline) {
        for (const event of pending) this.ledger.unacknowledged.add(event.eventId);
        return;
      }
      const url = this.#gateways[this.#nextGateway++ % this.#gateways.length] as string;
      const started = Date.now();
      const answers = await trackOnce(url, pending, this.#requestTimeoutMs);
      this.ledger.requests++;
      if (Date.now() - started > this.#slowMs) this.ledger.slow++;
      const retry: LoadEvent[] = [];
      pending.forEach((event, index) => {
        const answer = answers[index] ?? Answer.RETRY;
        this.ledger.record(event.eventId, answer);
        if (answer === Answer.RETRY) retry.push(event);
      });
      if (retry.length) {
        this.ledger.retried++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)));
      }
      pending = retry;
    }
  }

  /** A uniformly shuffled copy (Fisher–Yates), so every item gets its share of the load. */
  #shuffled(items: readonly string[]): string[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      [copy[i], copy[j]] = [copy[j] as string, copy[i] as string];
    }
    return copy;
  }

  /** A new event of a shopper who has items left, or undefined when every shopper used them all. */
  #nextEvent(): LoadEvent | undefined {
    for (let tries = 0; tries < 50; tries++) {
      const shopper = this.#shoppers[Math.floor(this.#random() * this.#shoppers.length)];
      if (!shopper || shopper.next >= shopper.items.length) continue;
      const itemId = shopper.items[shopper.next++] as string;
      let draw = this.#random();
      let type: LoadEventType = 'VIEW';
      for (const entry of TYPES) {
        type = entry.type;
        draw -= entry.share;
        if (draw < 0) break;
      }
      return { eventId: randomUUID(), userId: shopper.userId, type, itemId, sessionId: `s-${shopper.userId}` };
    }
    return this.#shoppers.find((shopper) => shopper.next < shopper.items.length) ? this.#nextEvent() : undefined;
  }

  async #run(): Promise<void> {
    const started = performance.now();
    let made = 0;
    while (this.#running) {
      const size = this.#random() < this.#batchShare ? this.#batchSize : 1;
      const events: LoadEvent[] = [];
      for (let i = 0; i < size; i++) {
        const event = this.#nextEvent();
        if (event) events.push(event);
      }
      if (events.length === 0) break;
      made += events.length;
      const due = started + (made / this.#rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      while (this.#inFlight.size >= this.#maxInFlight) await Promise.race([...this.#inFlight]);
      const delivery = this.deliver(events).finally(() => this.#inFlight.delete(delivery));
      this.#inFlight.add(delivery);
    }
  }
}
