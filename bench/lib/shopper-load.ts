// The shopper side of bench/freshness.ts: subscribers that watch their lists, an open-loop stream of purchase
// events sent to the gateway each shopper is not subscribed on, and the bookkeeping that matches pushes to
// the events that caused them (see the definitions at the top of bench/freshness.ts).
import { randomUUID } from 'node:crypto';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { post } from './graphql-http.ts';
import { percentile } from './results.ts';

/** A shopper's list, pushed on every visible change; `change.trigger` says what caused the push. */
export const WATCH = `subscription($userId: ID!) {
  recommendationsUpdated(userId: $userId, k: 10) {
    causedBy { eventId receivedAt processedAt } generatedAt strategy change { trigger } items { item { id } } } }`;
const TRACK = 'mutation($input: EventInput!) { trackEvent(input: $input) { status } }';
const FIRST_PUSH_DEADLINE_MS = 120_000;

interface Pushed {
  recommendationsUpdated: {
    causedBy: { eventId: string; receivedAt: string; processedAt: string } | null;
    generatedAt: string;
    strategy: string;
    change: { trigger: string } | null;
    items: { item: { id: string } }[];
  };
}

/** Where an event's time went, by wall clock (one machine, one clock). */
interface Stages {
  /** Request → stored: HTTP, GraphQL, the insert starting. */
  stored: number;
  /** Stored → processed: commit, queue, worker (features, fold-in). */
  processed: number;
  /** Processed → list computed: pub/sub, the gateway's recompute. */
  computed: number;
  /** Computed → received: GraphQL, WebSocket. */
  delivered: number;
}

/** One trackEvent the benchmark sent, and what became of it. */
export interface SentEvent {
  readonly eventId: string;
  readonly user: number;
  /** The item bought: on the shopper's list when sent, so a list that reflects the purchase lacks it. */
  readonly itemId: string;
  /** performance.now() just before the request. */
  readonly sentAt: number;
  /**
   * pending: no push for it yet; answered: the push naming it arrived (latencyMs); superseded: a push naming a
   * later event of the shopper arrived first; failed: the request failed; lost: still pending when its phase
   * stopped waiting.
   */
  outcome: 'pending' | 'answered' | 'superseded' | 'failed' | 'lost';
  latencyMs?: number;
  stages?: Stages;
  /**
   * A push for another reason (catalogue, model) that arrived after the event was sent and no longer showed
   * the item bought: it probably showed the purchase, and the push naming the event is then not sent, since
   * an unchanged list is not pushed again. Set on events still waiting for their own push.
   */
  shownByOtherPush?: string;
}

/** Pushes received, by trigger (SUBSCRIBED, EVENT, CATALOG, MODEL), and when the latest of each arrived. */
export class PushCounter {
  readonly #counts = new Map<string, number>();
  readonly #lastAt = new Map<string, number>();

  count(trigger: string, at: number): void {
    this.#counts.set(trigger, (this.#counts.get(trigger) ?? 0) + 1);
    this.#lastAt.set(trigger, at);
  }

  snapshot(): Map<string, number> {
    return new Map(this.#counts);
  }

  /** Pushes by trigger since `snapshot`. */
  since(snapshot: Map<string, number>): Record<string, number> {
    const delta: Record<string, number> = {};
    for (const [trigger, count] of this.#counts) {
      const added = count - (snapshot.get(trigger) ?? 0);
      if (added > 0) delta[trigger] = added;
    }
    return delta;
  }

  /** performance.now() of the latest push with this trigger, or -Infinity. */
  lastAt(trigger: string): number {
    return this.#lastAt.get(trigger) ?? Number.NEGATIVE_INFINITY;
  }

  get total(): number {
    let total = 0;
    for (const count of this.#counts.values()) total += count;
    return total;
  }
}

/** What one stretch of load sent. */
export interface LoadStats {
  askedEventsPerSecond: number;
  eventsPerSecond: number;
  events: number;
  sendSeconds: number;
  /** Most trackEvent requests awaiting their answer at once (the sender is open-loop). */
  maxRequestsInFlight: number;
  startedAt: number;
  stoppedAt: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `shoppers` subscribers, shopper s on gateway s % 2 with a WebSocket connection of its own (as a storefront
 * tab has), each watching user `u<s>`; and the events sent on their behalf.
 */
export class ShopperLoad {
  readonly events: SentEvent[] = [];
  readonly strategies = new Map<string, number>();
  /** Why trackEvent requests failed, by message, over the whole run. */
  readonly requestErrors = new Map<string, number>();
  readonly #urls: readonly string[];
  readonly #shoppers: number;
  readonly #items: number;
  readonly #pushes: PushCounter;
  readonly #pending = new Map<string, SentEvent>();
  readonly #pendingOf: Set<SentEvent>[];
  /** Each subscriber's list as last pushed, to buy from it. */
  readonly #lists: string[][];
  readonly #clients: Client[] = [];

  constructor(options: { urls: readonly string[]; shoppers: number; items: number; pushes: PushCounter }) {
    this.#urls = options.urls;
    this.#shoppers = options.shoppers;
    this.#items = options.items;
    this.#pushes = options.pushes;
    this.#pendingOf = Array.from({ length: options.shoppers }, () => new Set<SentEvent>());
    this.#lists = Array.from({ length: options.shoppers }, () => []);
  }

  /** Opens every subscription; resolves once each has its first list. */
  async subscribe(): Promise<void> {
    await Promise.all(Array.from({ length: this.#shoppers }, (_, user) => this.#subscribe(user)));
  }

  #subscribe(user: number): Promise<void> {
    const url = `${this.#urls[user % 2]!.replace('http', 'ws')}/graphql`;
    const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0 });
    this.#clients.push(client);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no first list for u${user}`)), FIRST_PUSH_DEADLINE_MS);
      client.subscribe<Pushed>(
        { query: WATCH, variables: { userId: `u${user}` } },
        {
          next: ({ data }) => {
            clearTimeout(timer);
            if (data) this.#onPush(user, data.recommendationsUpdated);
            resolve();
          },
          error: (error) => {
            clearTimeout(timer);
            reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
          },
          complete: () => undefined,
        },
      );
    });
  }

  #onPush(user: number, list: Pushed['recommendationsUpdated']): void {
    const at = performance.now();
    const trigger = list.change?.trigger ?? 'UNKNOWN';
    this.#pushes.count(trigger, at);
    const ids = list.items.map((r) => r.item.id);
    this.#lists[user] = ids;
    this.strategies.set(list.strategy, (this.strategies.get(list.strategy) ?? 0) + 1);
    // Any push after a purchase whose list lacks the item bought shows the purchase: a catalogue or model push
    // (no causedBy), or one naming an earlier event of the shopper whose ranking already read this one's
    // features (the worker applied both before the gateway ranked). The event's own recompute then finds the
    // list unchanged and pushes nothing: nothing was missed, and the event has no latency of its own.
    if (trigger !== 'SUBSCRIBED') {
      for (const event of this.#pendingOf[user]!) {
        if (!ids.includes(event.itemId)) event.shownByOtherPush ??= trigger;
      }
    }
    const cause = list.causedBy;
    if (!cause) return;
    const event = this.#pending.get(cause.eventId);
    if (!event) return; // answered or superseded already, or given up on by an earlier phase
    event.outcome = 'answered';
    event.latencyMs = at - event.sentAt;
    const sentWall = performance.timeOrigin + event.sentAt;
    const storedWall = Date.parse(cause.receivedAt);
    const processedWall = Date.parse(cause.processedAt);
    const generatedWall = Date.parse(list.generatedAt);
    event.stages = {
      stored: storedWall - sentWall,
      processed: processedWall - storedWall,
      computed: generatedWall - processedWall,
      delivered: performance.timeOrigin + at - generatedWall,
    };
    this.#settle(event);
    // This push supersedes every earlier event of the shopper that has not been answered yet.
    for (const other of this.#pendingOf[user]!) {
      if (other.sentAt <= event.sentAt) {
        other.outcome = 'superseded';
        this.#settle(other);
      }
    }
  }

  #settle(event: SentEvent): void {
    this.#pending.delete(event.eventId);
    this.#pendingOf[event.user]!.delete(event);
  }

  #send(inFlight: Set<Promise<void>>): void {
    // A shopper with no event in flight, so the item bought is on the list they see now: a random one, else the
    // next free one after it. Under overload every shopper may have one in flight; then the item is one none of
    // their pending events bought: buying again what a pending event bought changes nothing (the list lacks it
    // already), so no push would name the event and it would count as lost though nothing was missed.
    let user = Math.floor(Math.random() * this.#shoppers);
    for (let step = 1; step < this.#shoppers && this.#pendingOf[user]!.size > 0; step++) {
      user = (user + 1) % this.#shoppers;
    }
    const bought = new Set([...this.#pendingOf[user]!].map((pending) => pending.itemId));
    const list = this.#lists[user]!.filter((id) => !bought.has(id));
    const itemId = list[Math.floor(Math.random() * list.length)] ?? `i${Math.floor(Math.random() * this.#items)}`;
    const event: SentEvent = { eventId: randomUUID(), user, itemId, sentAt: performance.now(), outcome: 'pending' };
    this.events.push(event);
    this.#pending.set(event.eventId, event);
    this.#pendingOf[user]!.add(event);
    const request = post(this.#urls[(user + 1) % 2]!, TRACK, {
      input: { eventId: event.eventId, userId: `u${user}`, type: 'PURCHASE', itemId },
    })
      .then(() => undefined)
      .catch((error: unknown) => {
        const message = (error instanceof Error ? error.message : String(error)).slice(0, 200);
        this.requestErrors.set(message, (this.requestErrors.get(message) ?? 0) + 1);
        if (event.outcome !== 'pending') return;
        event.outcome = 'failed';
        this.#settle(event);
      });
    inFlight.add(request);
    void request.finally(() => inFlight.delete(request));
  }

  /**
   * Starts sending `rate` purchase events per second, open-loop in ticks of 10 ms, each to the gateway the
   * shopper is NOT subscribed on. `stop()` stops sending and resolves once every request has its answer.
   */
  start(rate: number): { stop(): Promise<LoadStats> } {
    let stopping = false;
    let sent = 0;
    let maxRequestsInFlight = 0;
    const inFlight = new Set<Promise<void>>();
    const startedAt = performance.now();
    const running = (async (): Promise<LoadStats> => {
      while (!stopping) {
        const due = Math.floor(((performance.now() - startedAt) / 1000) * rate);
        for (; sent < due; sent++) this.#send(inFlight);
        maxRequestsInFlight = Math.max(maxRequestsInFlight, inFlight.size);
        await sleep(10);
      }
      const stoppedAt = performance.now();
      await Promise.all(inFlight);
      const sendSeconds = (stoppedAt - startedAt) / 1000;
      return {
        askedEventsPerSecond: rate,
        eventsPerSecond: sent / sendSeconds,
        events: sent,
        sendSeconds,
        maxRequestsInFlight,
        startedAt,
        stoppedAt,
      };
    })();
    return {
      stop: () => {
        stopping = true;
        return running;
      },
    };
  }

  /** Sends `rate` events per second for `seconds`. */
  async run(rate: number, seconds: number): Promise<LoadStats> {
    const load = this.start(rate);
    await sleep(seconds * 1000);
    return load.stop();
  }

  /**
   * Waits at most `ms` for the pushes `events` still wait for, then gives up on the rest: they count as lost,
   * and a later push naming one of them no longer changes anything.
   */
  async drain(events: readonly SentEvent[], ms: number): Promise<void> {
    const until = performance.now() + ms;
    const waiting = () => events.some((event) => event.outcome === 'pending');
    while (waiting() && performance.now() < until) await sleep(50);
    for (const event of events) {
      if (event.outcome !== 'pending') continue;
      event.outcome = 'lost';
      this.#settle(event);
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.#clients.splice(0).map((client) => client.dispose()));
  }
}

/** Events sent within [from, to) of performance.now(). */
export function sentBetween(events: readonly SentEvent[], from: number, to: number): SentEvent[] {
  return events.filter((event) => event.sentAt >= from && event.sentAt < to);
}

/** Freshness of a set of events: latency percentiles of those answered directly, and what became of the rest. */
export function summarize(events: readonly SentEvent[]) {
  const latencies = events
    .flatMap((event) => (event.outcome === 'answered' && event.latencyMs !== undefined ? [event.latencyMs] : []))
    .sort((a, b) => a - b);
  const count = (outcome: SentEvent['outcome']) => events.filter((event) => event.outcome === outcome).length;
  return {
    events: events.length,
    p50Ms: percentile(latencies, 50),
    p90Ms: percentile(latencies, 90),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    answeredDirectly: latencies.length,
    superseded: count('superseded'),
    failedRequests: count('failed'),
    // Shown: no push named the event, but a catalogue or model push after it showed the list without the item
    // bought, and a list that did not change since is not pushed again. The shopper missed nothing.
    shownByOtherPush: events.filter((event) => event.outcome === 'lost' && event.shownByOtherPush).length,
    lostPushes: events.filter((event) => event.outcome === 'lost' && !event.shownByOtherPush).length,
  };
}

/** p50/p99 of each stage over the events answered directly. */
export function summarizeStages(events: readonly SentEvent[]) {
  const names = ['stored', 'processed', 'computed', 'delivered'] as const;
  return Object.fromEntries(
    names.map((name) => {
      const values = events.flatMap((event) => (event.stages ? [event.stages[name]] : [])).sort((a, b) => a - b);
      return [name, { p50: percentile(values, 50), p99: percentile(values, 99) }];
    }),
  );
}

/**
 * `count` subscriptions multiplexed over `connections` graphql-ws connections split between the gateways,
 * subscription i watching user `u<firstUser + i % users>`, as the fan-out load. Resolves once each has its first list;
 * `lists` then holds every subscription's list as last pushed, and every push is counted in `pushes`.
 */
export async function openMultiplexedSubscriptions(options: {
  urls: readonly string[];
  count: number;
  connections: number;
  firstUser: number;
  users: number;
  pushes: PushCounter;
}) {
  const lists: string[][] = Array.from({ length: options.count }, () => []);
  let closedConnections = 0;
  let failedSubscriptions = 0;
  const clients = Array.from({ length: options.connections }, (_, c) =>
    createClient({
      url: `${options.urls[c % options.urls.length]!.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      on: { closed: () => closedConnections++ },
    }),
  );
  const subscribeOne = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no first list on subscription ${i}`)), FIRST_PUSH_DEADLINE_MS);
      clients[i % options.connections]!.subscribe<Pushed>(
        { query: WATCH, variables: { userId: `u${options.firstUser + (i % options.users)}` } },
        {
          next: ({ data, errors }) => {
            clearTimeout(timer);
            if (errors) return reject(new Error(JSON.stringify(errors)));
            if (!data) return;
            options.pushes.count(data.recommendationsUpdated.change?.trigger ?? 'UNKNOWN', performance.now());
            lists[i] = data.recommendationsUpdated.items.map((r) => r.item.id);
            resolve();
          },
          error: (error) => {
            clearTimeout(timer);
            failedSubscriptions++;
            reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
          },
          complete: () => undefined,
        },
      );
    });
  // In batches, so the gateways compute first lists at a pace that leaves the shopper stream some room.
  const BATCH = 200;
  for (let start = 0; start < options.count; start += BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(BATCH, options.count - start) }, (_, i) => subscribeOne(start + i)),
    );
  }
  return {
    lists,
    /** Connections closed and subscriptions ended by an error so far (a gateway drops a client that lags). */
    failures: () => ({ closedConnections, failedSubscriptions }),
    dispose: async () => {
      await Promise.all(clients.map((client) => client.dispose()));
    },
  };
}
