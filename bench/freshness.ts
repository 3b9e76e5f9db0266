// npm run bench -- freshness [--subscribers 1000] [--rate 500] [--seconds 60]
// Event → push latency across replicas: two gateway processes and one worker process share Postgres and
// Redis; half the shoppers subscribe on gateway A and half on B, and each shopper's events are sent to the
// other gateway. A model is trained first on seeded purchase histories, so every event goes the full way:
// features, fold-in of the shopper's vector, HNSW retrieval, diff, push. Each event is the purchase of an
// item on the shopper's current list, so it must change the list (a push goes out only on a change).
// Latency runs from just before the trackEvent request to the push that names the event (or a later event
// of the same shopper, which supersedes it). Baseline in the same run: the staleness a storefront polling
// `recommendations` once a second would see.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { percentile, writeResults } from './lib/results.ts';
import { createBenchEnvironment, freePort, startProcess } from './lib/services.ts';
import { measureIdleSubscriberBytes } from './lib/subscriber-memory.ts';

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
/** Taste groups: seeded shoppers buy within one group, so the model has structure to learn. */
const TASTES = 20;
const SEED_PURCHASES_PER_SHOPPER = 8;
const POLL_SAMPLES = 40;

const WATCH = `subscription($userId: ID!) {
  recommendationsUpdated(userId: $userId, k: 10) {
    causedBy { eventId receivedAt processedAt } generatedAt strategy items { item { id } } } }`;
const TRACK = 'mutation($input: EventInput!) { trackEvent(input: $input) { status } }';

interface Pushed {
  recommendationsUpdated: {
    causedBy: { eventId: string; receivedAt: string; processedAt: string } | null;
    generatedAt: string;
    strategy: string;
    items: { item: { id: string } }[];
  };
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) * 1024;
}

// Plain node:http with keep-alive: the load generator shares the two cores with the system under test, and
// fetch costs it about twice the CPU per request.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(url: string, query: string, variables: Record<string, unknown>): Promise<unknown> {
  const payload = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${url}/graphql`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown; errors?: unknown[] };
            if (body.errors) reject(new Error(JSON.stringify(body.errors)));
            else resolve(body.data);
          } catch (error) {
            reject(error);
          }
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
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
  // Seed: every subscriber (and as many other shoppers) bought a few items of one taste; then train.
  const seed: { userId: string; type: string; itemId: string }[] = [];
  for (let user = 0; user < 2 * SUBSCRIBERS; user++) {
    const taste = user % TASTES;
    for (let n = 0; n < SEED_PURCHASES_PER_SHOPPER; n++) {
      const item = taste + TASTES * Math.floor(Math.random() * (ITEMS / TASTES));
      seed.push({ userId: `u${user}`, type: 'PURCHASE', itemId: `i${item}` });
    }
  }
  for (let start = 0; start < seed.length; start += 1000) {
    await post(urls[0]!, 'mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }', {
      inputs: seed.slice(start, start + 1000),
    });
  }
  const trained = (await post(
    urls[0]!,
    'mutation { retrainModel(wait: true, params: { factors: 32 }) { version { id events } } }',
    {},
  )) as { retrainModel: { version: { id: number; events: number } } };
  console.error(
    `model version ${trained.retrainModel.version.id} trained on ${trained.retrainModel.version.events} events`,
  );

  // Memory per idle subscriber, on a gateway of its own that is measured after forced full GCs.
  const idleMemory = await measureIdleSubscriberBytes({
    databaseUrl: env.databaseUrl,
    redisUrl: env.redisUrl,
    prefix: env.id,
    subscribers: SUBSCRIBERS,
    query: WATCH,
    userIdPrefix: 'idle-',
  });
  console.error(`idle subscriber: ${(idleMemory.bytesPerSubscriber / 1024).toFixed(1)} KB (${idleMemory.method})`);

  // Subscribe: shopper s on gateway s % 2; wait for every first list.
  const pending = new Map<string, { sentAt: number; user: number }>();
  const pendingPerUser = new Array<number>(SUBSCRIBERS).fill(0);
  const settle = (eventId: string) => {
    const event = pending.get(eventId);
    if (!event) return;
    pending.delete(eventId);
    pendingPerUser[event.user]!--;
  };
  const latencies: number[] = [];
  const stages = {
    stored: [] as number[],
    processed: [] as number[],
    computed: [] as number[],
    delivered: [] as number[],
  };
  const lastSent = new Array<number>(SUBSCRIBERS).fill(0);
  /** Each subscriber's list as last pushed, to buy from it. */
  const lists = new Array<string[]>(SUBSCRIBERS).fill([]);
  const strategies = new Map<string, number>();
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
            const list = data?.recommendationsUpdated;
            if (list) {
              lists[user] = list.items.map((r) => r.item.id);
              strategies.set(list.strategy, (strategies.get(list.strategy) ?? 0) + 1);
            }
            const cause = list?.causedBy?.eventId;
            if (!cause) return resolve();
            const at = performance.now();
            const event = pending.get(cause);
            if (event) {
              latencies.push(at - event.sentAt);
              // Where the time went, by wall clock (one machine, one clock): request → stored (HTTP, GraphQL,
              // the insert starting), stored → processed (commit, queue, worker: features, fold-in), processed →
              // list computed (pub/sub, the gateway's recompute), computed → received (GraphQL, WebSocket).
              const sentWall = performance.timeOrigin + event.sentAt;
              const storedWall = Date.parse(list!.causedBy!.receivedAt);
              const processedWall = Date.parse(list!.causedBy!.processedAt);
              const generatedWall = Date.parse(list!.generatedAt);
              stages.stored.push(storedWall - sentWall);
              stages.processed.push(processedWall - storedWall);
              stages.computed.push(generatedWall - processedWall);
              stages.delivered.push(performance.timeOrigin + at - generatedWall);
            }
            // This push supersedes every earlier event of the shopper that has not been answered yet.
            for (const [eventId, other] of pending) {
              if (other.user === user && (eventId === cause || other.sentAt <= (event?.sentAt ?? 0))) {
                settle(eventId);
              }
            }
          },
          error: reject,
          complete: () => undefined,
        },
      );
    });
  };
  await Promise.all(Array.from({ length: SUBSCRIBERS }, (_, user) => subscribe(user)));
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
      // A shopper with no event in flight, so the item bought is on the list they see now.
      let user = Math.floor(Math.random() * SUBSCRIBERS);
      for (let tries = 0; tries < 20 && pendingPerUser[user]! > 0; tries++) {
        user = Math.floor(Math.random() * SUBSCRIBERS);
      }
      const list = lists[user]!;
      const itemId = list[Math.floor(Math.random() * list.length)] ?? `i${Math.floor(Math.random() * ITEMS)}`;
      const eventId = randomUUID();
      const sentAt = performance.now();
      pending.set(eventId, { sentAt, user });
      pendingPerUser[user]!++;
      lastSent[user] = sentAt;
      const request = post(urls[(user + 1) % 2]!, TRACK, {
        input: { eventId, userId: `u${user}`, type: 'PURCHASE', itemId },
      })
        .then(() => undefined)
        .catch(() => {
          failed++;
          settle(eventId);
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
    const user = 2 * SUBSCRIBERS + sample; // fresh shoppers, no subscription
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
      'two gateway processes and one worker process on this machine; a model trained on seeded purchases; each event the purchase of an item on the shopper’s list, sent to the gateway the shopper is not subscribed on',
    modelVersion: trained.retrainModel.version.id,
    pushesByStrategy: Object.fromEntries(strategies),
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
    stagesMs: Object.fromEntries(
      Object.entries(stages).map(([stage, values]) => {
        values.sort((a, b) => a - b);
        return [stage, { p50: percentile(values, 50), p99: percentile(values, 99) }];
      }),
    ),
    lostPushes,
    bytesPerIdleSubscriber: idleMemory.bytesPerSubscriber,
    idleSubscriberMemory: idleMemory,
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
  agent.destroy();
  await Promise.all([...gateways, worker].map((process) => process.stop()));
  await env.drop();
}
