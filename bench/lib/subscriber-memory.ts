// Gateway memory per idle graphql-ws subscriber, measured after full garbage collections. The gateway runs as
// its own process with the inspector on; over the Chrome DevTools Protocol this module forces a GC
// (HeapProfiler.collectGarbage) and reads process.memoryUsage() inside it, with no change to src/. An RSS delta
// between two moments of a busy run is drowned by GC timing; right after a forced GC it is steady to the page.
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { connectInspector, type Inspector } from './inspector.ts';
import { freePort, startProcess } from './services.ts';

/** What one idle subscriber costs the gateway (see `measureIdleSubscriberBytes`). */
export interface IdleSubscriberMemory {
  /** Resident set size after a full GC, N subscribers minus none, per subscriber (native memory included). */
  bytesPerSubscriber: number;
  /** V8 heapUsed after a full GC, N subscribers minus none, per subscriber. */
  heapBytesPerSubscriber: number;
  subscribers: number;
  method: string;
}

interface MemoryUsage {
  rss: number;
  heapUsed: number;
}

/** At least this many warm-up subscribers: fewer leave functions to be optimised during the measured round. */
const WARM_UP_SUBSCRIBERS = 1000;
/** Samples per measurement point; each field's median is taken. */
const SAMPLES = 5;
/** Subscriptions opened at once. */
const BATCH = 100;
const SEED_ITEMS = 200;
const DEADLINE_MS = 120_000;
const POOL_IDLE_MS = 15_000;

/**
 * Starts one gateway process and measures, after forced full GCs, its memory with no subscriber (after a
 * warm-up) and with `subscribers` idle ones, each on its own graphql-ws connection (as a storefront tab
 * would be) and each past its first push. `query` is a subscription taking `$userId: ID!`; subscriber i
 * watches user `${userIdPrefix}${i}`. Seeds a few items when the catalogue is empty, so first lists are not.
 */
export async function measureIdleSubscriberBytes(options: {
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  subscribers: number;
  query: string;
  userIdPrefix?: string;
}): Promise<IdleSubscriberMemory> {
  const userIdPrefix = options.userIdPrefix ?? 'idle-subscriber-';
  const port = await freePort();
  const inspectPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const databasePort = Number(new URL(options.databaseUrl).port || 5432);
  const gateway = await startGatewayWithInspector(
    {
      DATABASE_URL: options.databaseUrl,
      REDIS_URL: options.redisUrl,
      REDIS_PREFIX: options.prefix,
      DEMO_DATA: 'false',
      TRAIN_INTERVAL_MINUTES: '0',
      PORT: String(port),
    },
    inspectPort,
    `${url}/ready`,
  );
  let inspector: Inspector | undefined;
  const clients: Client[] = [];
  try {
    inspector = await connectInspector(inspectPort);
    await seedCatalogIfEmpty(url);
    const subscribeAll = async (idPrefix: string, count: number) => {
      for (let start = 0; start < count; start += BATCH) {
        const userIds = Array.from({ length: Math.min(BATCH, count - start) }, (_, i) => idPrefix + (start + i));
        await openSubscribers(`${url.replace('http', 'ws')}/graphql`, options.query, userIds, clients);
      }
    };

    // A warm-up round opened and closed first: what a first round costs once (lazy modules, optimised code)
    // would otherwise be spread over the subscribers and make the figure depend on N.
    await subscribeAll(`${userIdPrefix}warm-up-`, Math.max(options.subscribers, WARM_UP_SUBSCRIBERS));
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
    await waitUntilIdle(inspector, port, 0, databasePort);
    const before = await settledMemory(inspector);
    await subscribeAll(userIdPrefix, options.subscribers);
    await waitUntilIdle(inspector, port, options.subscribers, databasePort);
    const after = await settledMemory(inspector);

    const per = (field: (m: MemoryUsage) => number) => (field(after) - field(before)) / options.subscribers;
    return {
      bytesPerSubscriber: per((m) => m.rss),
      heapBytesPerSubscriber: per((m) => m.heapUsed),
      subscribers: options.subscribers,
      method:
        `one gateway process: rss (bytesPerSubscriber) and heapUsed (heapBytesPerSubscriber) with ` +
        `${options.subscribers} idle subscribers minus with none, each the median of ${SAMPLES} reads of ` +
        `process.memoryUsage() right after a full GC forced over the inspector; one graphql-ws connection per ` +
        `subscriber, each past its first push; the baseline taken after a warm-up round of ` +
        `max(N, ${WARM_UP_SUBSCRIBERS}) subscribers was opened and closed, and at both points after idle ` +
        `Postgres connections closed`,
    };
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
    inspector?.close();
    await gateway.stop();
  }
}

async function startGatewayWithInspector(env: Record<string, string>, inspectPort: number, readyUrl: string) {
  return startProcess('server.ts', ['--role=gateway'], env, readyUrl, [`--inspect=127.0.0.1:${inspectPort}`]);
}

async function settledMemory(inspector: Inspector): Promise<MemoryUsage> {
  const samples: MemoryUsage[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    // Twice: the first collection can run finalizers and clear weak references whose targets the second frees.
    await inspector.call('HeapProfiler.collectGarbage');
    await inspector.call('HeapProfiler.collectGarbage');
    samples.push(JSON.parse(await inspector.evaluate<string>('JSON.stringify(process.memoryUsage())')) as MemoryUsage);
  }
  const median = (field: keyof MemoryUsage) => {
    const values = samples.map((sample) => sample[field]).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)]!;
  };
  return { rss: median('rss'), heapUsed: median('heapUsed') };
}

/**
 * Waits until the gateway holds exactly `expected` accepted sockets on its port (closes are asynchronous),
 * then, for at most POOL_IDLE_MS, until its Postgres pools have closed their idle connections, so both
 * points are taken with the same pools (a connection is some 100 KB; pg closes idle ones after 10 s).
 */
async function waitUntilIdle(inspector: Inspector, port: number, expected: number, databasePort: number) {
  const count = (condition: string) =>
    inspector.evaluate<number>(`process._getActiveHandles().filter((h) => ${condition}).length`);
  const until = Date.now() + DEADLINE_MS;
  for (;;) {
    const open = await count(`h.localPort === ${port} && !h.destroyed`);
    if (open === expected) break;
    if (Date.now() > until) throw new Error(`gateway holds ${open} connections, expected ${expected}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const poolsIdleBy = Date.now() + POOL_IDLE_MS;
  while ((await count(`h.remotePort === ${databasePort}`)) > 0 && Date.now() < poolsIdleBy) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function post(url: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

/** Only into an empty catalogue: a catalogue change would reach every other gateway sharing the prefix. */
async function seedCatalogIfEmpty(url: string) {
  const data = (await post(url, '{ items(first: 1) { edges { cursor } } }')) as { items: { edges: unknown[] } };
  if (data.items.edges.length > 0) return;
  const items = Array.from({ length: SEED_ITEMS }, (_, i) => ({ id: `i${i}`, name: `Item ${i}`, price: 5 }));
  await post(url, 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }', { items });
}

/** Opens one client per user and resolves once every one of them received its first list. */
async function openSubscribers(wsUrl: string, query: string, userIds: string[], clients: Client[]) {
  const until = Date.now() + DEADLINE_MS;
  await Promise.all(
    userIds.map((userId) => {
      const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
      clients.push(client);
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no first push for ${userId}`)), until - Date.now());
        client.subscribe<{ recommendationsUpdated: { items: unknown[] } }>(
          { query, variables: { userId } },
          {
            next: ({ data, errors }) => {
              clearTimeout(timer);
              if (errors) reject(new Error(JSON.stringify(errors)));
              else if (!data?.recommendationsUpdated.items.length) reject(new Error(`empty first list for ${userId}`));
              else resolve();
            },
            error: (error) => {
              clearTimeout(timer);
              reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
            },
            complete: () => undefined,
          },
        );
      });
    }),
  );
}
