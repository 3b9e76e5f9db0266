// npm run bench -- freshness [--subscribers 1000] [--rate 500] [--seconds 60]
// Event → push latency across replicas: two gateway processes and one worker process share Postgres and
// Redis; half the shoppers subscribe on gateway A and half on B, and each shopper's events are sent to the
// other gateway. Latency runs from just before the trackEvent request to the push that names the event
// (or a later event of the same shopper, which supersedes it). Baseline in the same run: the staleness a
// storefront polling `recommendations` once a second would see.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { percentile, writeResults } from './lib/results.ts';
import { createBenchEnvironment, freePort, startProcess } from './lib/services.ts';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '60' },
  },
});
const SUBSCRIBERS = Number(values.subscribers);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const ITEMS = 2000;
const POLL_SAMPLES = 40;

const WATCH = `subscription($userId: ID!) {
  recommendationsUpdated(userId: $userId, k: 10) { causedBy { eventId } items { item { id } } } }`;
const TRACK = 'mutation($input: EventInput!) { trackEvent(input: $input) { status } }';

interface Pushed {
  recommendationsUpdated: { causedBy: { eventId: string } | null; items: { item: { id: string } }[] };
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) * 1024;
}

async function post(url: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const env = await createBenchEnvironment('freshness');
const shared = {
  DATABASE_URL: env.databaseUrl,
  REDIS_URL: env.redisUrl,
  REDIS_PREFIX: env.id,
  DEMO_DATA: 'false',
  TRAIN_INTERVAL_MINUTES: '0',
};
const ports = [await freePort(), await freePort()];
const worker = await startProcess('worker.ts', [], shared);
const gateways = await Promise.all(
  ports.map((port) =>
    startProcess('server.ts', ['--role=gateway'], { ...shared, PORT: String(port) }, `http://127.0.0.1:${port}/ready`),
  ),
);
const urls = ports.map((port) => `http://127.0.0.1:${port}`);
const clients: Client[] = [];
try {
  const items = Array.from({ length: ITEMS }, (_, i) => ({ id: `i${i}`, name: `Item ${i}`, price: 5 }));
  for (let start = 0; start < ITEMS; start += 1000) {
    await post(urls[0]!, 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }', {
      items: items.slice(start, start + 1000),
    });
  }

  // Subscribe: shopper s on gateway s % 2; wait for every first list. Memory per idle subscriber is taken
  // between the first tenth (which warms the gateways up) and all of them.
  const warmUp = Math.max(1, Math.floor(SUBSCRIBERS / 10));
  let rssBefore: number[] = [];
  const pending = new Map<string, { sentAt: number; user: number }>();
  const latencies: number[] = [];
  const lastSent = new Array<number>(SUBSCRIBERS).fill(0);
  let pushes = 0;
  const subscribe = (user: number) => {
    const client = createClient({ url: `${urls[user % 2]!.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket });
    clients.push(client);
    return new Promise<void>((resolve, reject) => {
      client.subscribe<Pushed>(
        { query: WATCH, variables: { userId: `u${user}` } },
        {
          next: ({ data }) => {
            pushes++;
            const cause = data?.recommendationsUpdated.causedBy?.eventId;
            if (!cause) return resolve();
            const at = performance.now();
            const event = pending.get(cause);
            if (event) latencies.push(at - event.sentAt);
            // This push supersedes every earlier event of the shopper that has not been answered yet.
            for (const [eventId, other] of pending) {
              if (other.user === user && (eventId === cause || other.sentAt <= (event?.sentAt ?? 0))) {
                pending.delete(eventId);
              }
            }
          },
          error: reject,
          complete: () => undefined,
        },
      );
    });
  };
  await Promise.all(Array.from({ length: warmUp }, (_, user) => subscribe(user)));
  rssBefore = gateways.map((g) => rssBytes(g.child.pid!));
  await Promise.all(Array.from({ length: SUBSCRIBERS - warmUp }, (_, i) => subscribe(warmUp + i)));
  const rssIdle = gateways.map((g) => rssBytes(g.child.pid!));
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const rssDeltaBytes = sum(rssIdle) - sum(rssBefore);
  // RSS moves with garbage collection; a negative delta says the figure drowned in it, not that memory fell.
  const bytesPerIdleSubscriber = rssDeltaBytes > 0 ? rssDeltaBytes / (SUBSCRIBERS - warmUp) : null;
  console.error(`${SUBSCRIBERS} subscribers ready; sending ${RATE} events/s for ${SECONDS} s`);

  // Load: RATE events per second in ticks of 10 ms, each to the gateway the shopper is NOT subscribed on.
  const total = RATE * SECONDS;
  let sent = 0;
  let failed = 0;
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE));
    for (; sent < due; sent++) {
      const user = Math.floor(Math.random() * SUBSCRIBERS);
      const eventId = randomUUID();
      const sentAt = performance.now();
      pending.set(eventId, { sentAt, user });
      lastSent[user] = sentAt;
      const request = post(urls[(user + 1) % 2]!, TRACK, {
        input: { eventId, userId: `u${user}`, type: 'VIEW', itemId: `i${Math.floor(Math.random() * ITEMS)}` },
      })
        .then(() => undefined)
        .catch(() => {
          failed++;
          pending.delete(eventId);
        });
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await Promise.all(inFlight);
  const sendSeconds = (performance.now() - started) / 1000;
  // Let the last pushes arrive (bounded), then count what never did.
  const drainUntil = performance.now() + 10_000;
  while (pending.size > 0 && performance.now() < drainUntil) await new Promise((resolve) => setTimeout(resolve, 50));
  const lostPushes = pending.size;

  // Baseline: a storefront polling once a second sees an event when its next poll lands after processing.
  const staleness: number[] = [];
  for (let sample = 0; sample < POLL_SAMPLES; sample++) {
    const user = SUBSCRIBERS + sample; // fresh shoppers, no subscription
    const query = `query($userId: ID!) { recommendations(userId: $userId, k: 10) { items { item { id } } } }`;
    const list = (await post(urls[1]!, query, { userId: `u${user}` })) as {
      recommendations: { items: { item: { id: string } }[] };
    };
    // Buying the top item must take it off the list: the change the poller waits to see.
    const item = list.recommendations.items[0]!.item.id;
    const phase = Math.random() * 1000;
    const sentAt = performance.now();
    await post(urls[0]!, TRACK, { input: { userId: `u${user}`, type: 'PURCHASE', itemId: item } });
    await new Promise((resolve) => setTimeout(resolve, phase));
    for (;;) {
      const data = (await post(urls[1]!, query, { userId: `u${user}` })) as {
        recommendations: { items: { item: { id: string } }[] };
      };
      if (!data.recommendations.items.some((r) => r.item.id === item)) break; // bought: it left the list
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    staleness.push(performance.now() - sentAt);
  }

  latencies.sort((a, b) => a - b);
  staleness.sort((a, b) => a - b);
  writeResults('freshness', {
    setup:
      'two gateway processes and one worker process on this machine; each event sent to the gateway its shopper is not subscribed on',
    subscribers: SUBSCRIBERS,
    eventsPerSecond: sent / sendSeconds,
    events: sent,
    failedRequests: failed,
    pushes,
    p50Ms: percentile(latencies, 50),
    p90Ms: percentile(latencies, 90),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies[latencies.length - 1],
    answeredDirectly: latencies.length,
    lostPushes,
    bytesPerIdleSubscriber,
    idleSubscribersRssDeltaMb: rssDeltaBytes / 2 ** 20,
    workerRssMb: rssBytes(worker.child.pid!) / 2 ** 20,
    baseline: {
      what: 'polling recommendations once a second (random phase); time from trackEvent to the first poll showing the change',
      samples: POLL_SAMPLES,
      p50Ms: percentile(staleness, 50),
      p99Ms: percentile(staleness, 99),
    },
    targets: { p50MsAtMost: 10, p99MsAtMost: 50, lostPushes: 0 },
  });
} finally {
  await Promise.all(clients.map((client) => client.dispose()));
  await Promise.all([...gateways, worker].map((process) => process.stop()));
  await env.drop();
}
