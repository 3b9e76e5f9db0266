// npm run bench -- memory [--shoppers 100000] [--items 20000] [--events 1000000] [--more 500000] [--subscribers 1000]
// Redis memory of the online features: applies synthetic events through the real FeatureStore (the Lua script
// the worker runs, `applyMany` in pipelines of BATCH events; no HTTP, no Postgres) to this run's own prefix,
// then measures the bytes of that prefix only (the shared Redis holds other runs): the exact sum of
// `MEMORY USAGE <key> SAMPLES 0` over a SCAN of the prefix. First `--events` events make every one of
// `--shoppers` shoppers exist; `--more` further events to the same shoppers then show the growth per event.
// Baseline in the same run: what the earlier design's applied-marker (one key per event, kept 7 days) cost
// per event, measured on a sample of such keys. Last, the gateway's memory per idle subscriber
// (bench/lib/subscriber-memory.ts, as bench/freshness.ts measures it); `--subscribers 0` skips it.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import type { EventType } from '../src/generated/prisma/enums.ts';
import { type FeatureEvent, FeatureStore } from '../src/services/features.ts';
import { ShopperIds } from '../src/services/shopper-ids.ts';
import { writeResults } from './lib/results.ts';
import { createBenchEnvironment } from './lib/services.ts';
import { measureIdleSubscriberBytes } from './lib/subscriber-memory.ts';

const { values } = parseArgs({
  options: {
    shoppers: { type: 'string', default: '100000' },
    items: { type: 'string', default: '20000' },
    events: { type: 'string', default: '1000000' },
    more: { type: 'string', default: '500000' },
    subscribers: { type: 'string', default: '1000' },
  },
});
const SHOPPERS = Number(values.shoppers);
const ITEMS = Number(values.items);
const EVENTS = Number(values.events);
const MORE = Number(values.more);
const SUBSCRIBERS = Number(values.subscribers);
const CATEGORIES = 50;
/** Events per pipeline; two pipelines in flight. */
const BATCH = 2000;
const BASELINE_MARKERS = 10_000;
/** Shoppers given enough events to fill every window (history 500 items, purchases 500, ids 64), then more. */
const HEAVY_SHOPPERS = 100;
const HEAVY_EVENTS = 3000;
const HEAVY_MORE = 1000;
const HEAVY_PREFIX = 'heavy-';
/** Share of each event type (the rest is VIEW), roughly a shop's funnel. */
const TYPE_MIX: [EventType, number][] = [
  ['PURCHASE', 0.04],
  ['ADD_TO_CART', 0.08],
  ['REMOVE_FROM_CART', 0.02],
  ['CLICK', 0.16],
];
const WATCH = `subscription($userId: ID!) { recommendationsUpdated(userId: $userId, k: 10) { items { item { id } } } }`;

// A seeded generator (mulberry32, 32-bit integer arithmetic), so runs are comparable.
let seed = 42;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
/** Item popularity about Zipf-like: low indices far more often. */
function popularItem(): number {
  return Math.min(ITEMS - 1, Math.floor(ITEMS * random() ** 3));
}
function eventType(heavy: boolean): EventType {
  // Heavy shoppers buy one event in five, so their purchase window fills too.
  if (heavy && random() < 0.2) return 'PURCHASE';
  let r = random();
  for (const [type, share] of TYPE_MIX) {
    if (r < share) return type;
    r -= share;
  }
  return 'VIEW';
}

/**
 * Sessions of 1–9 events a minute apart, each on items near the session's first (so they co-visit); the first
 * SHOPPERS sessions go to each shopper once, later ones to random shoppers. Time moves on 20 s per event.
 */
function* synthesize(
  count: number,
  firstId: number,
  firstSession: number,
  heavy?: { shoppers: number; userPrefix: string },
): Generator<FeatureEvent> {
  const shoppers = heavy?.shoppers ?? SHOPPERS;
  const userPrefix = heavy?.userPrefix ?? 'shopper-';
  let id = firstId;
  let session = firstSession;
  const start = Date.UTC(2026, 0, 1);
  while (id < firstId + count) {
    const shopper = session < shoppers ? session : Math.floor(random() * shoppers);
    // Heavy shoppers roam the whole catalogue, so their history window fills.
    const anchor = heavy ? Math.floor(random() * ITEMS) : popularItem();
    const length = 1 + Math.floor(random() * 9);
    const begins = start + id * 20_000;
    for (let i = 0; i < length && id < firstId + count; i++) {
      const item = (anchor + Math.floor(random() * 20)) % ITEMS;
      yield {
        id: BigInt(id),
        eventId: `evt-${id}`,
        userId: `${userPrefix}${shopper}`,
        type: eventType(heavy !== undefined),
        itemId: `sku-${item}`,
        category: `category-${item % CATEGORIES}`,
        occurredAt: new Date(begins + i * 60_000),
        receivedAt: new Date(begins + i * 60_000),
      };
      id++;
    }
    session++;
  }
}

async function apply(features: FeatureStore, events: Generator<FeatureEvent>, label: string): Promise<number> {
  const started = performance.now();
  let applied = 0;
  const inFlight: Promise<void>[] = [];
  let batch: FeatureEvent[] = [];
  const flush = async () => {
    const sent = batch;
    batch = [];
    inFlight.push(features.applyMany(sent));
    if (inFlight.length >= 2) await inFlight.shift();
    applied += sent.length;
    if (applied % 100_000 < BATCH) console.error(`${label}: ${applied} events`);
  };
  for (const event of events) {
    batch.push(event);
    if (batch.length === BATCH) await flush();
  }
  if (batch.length) await flush();
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  console.error(`${label}: ${applied} events in ${seconds.toFixed(1)} s`);
  return seconds;
}

interface PrefixMemory {
  totalBytes: number;
  shopperBytes: number;
  shopperKeys: number;
  globalBytes: number;
  globalKeys: number;
}

/** Exact bytes of every key under the prefix (or `match`), split into per-shopper keys and the rest. */
async function measure(redis: Redis, prefix: string, match = `${prefix}:*`): Promise<PrefixMemory> {
  const memory: PrefixMemory = { totalBytes: 0, shopperBytes: 0, shopperKeys: 0, globalBytes: 0, globalKeys: 0 };
  const stream = redis.scanStream({ match, count: 2000 });
  for await (const keys of stream as AsyncIterable<string[]>) {
    if (keys.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.memory('USAGE', key, 'SAMPLES', 0);
    const results = (await pipeline.exec()) ?? [];
    keys.forEach((key, index) => {
      const bytes = Number(results[index]?.[1] ?? 0);
      memory.totalBytes += bytes;
      if (key.startsWith(`${prefix}:f:u:`)) {
        memory.shopperBytes += bytes;
        memory.shopperKeys++;
      } else {
        memory.globalBytes += bytes;
        memory.globalKeys++;
      }
    });
  }
  return memory;
}

/** Bytes per key of the earlier design's applied-markers (SET <prefix>:f:applied:<eventId> 1 EX 7 days). */
async function measureBaseline(redis: Redis, prefix: string): Promise<number> {
  const keys = Array.from({ length: BASELINE_MARKERS }, (_, i) => `${prefix}:baseline:f:applied:evt-${1e9 + i}`);
  const write = redis.pipeline();
  for (const key of keys) write.set(key, '1', 'EX', 7 * 24 * 3600);
  await write.exec();
  const read = redis.pipeline();
  for (const key of keys) read.memory('USAGE', key, 'SAMPLES', 0);
  const sizes = ((await read.exec()) ?? []).map(([, bytes]) => Number(bytes));
  await redis.unlink(...keys);
  return sizes.reduce((sum, bytes) => sum + bytes, 0) / keys.length;
}

const env = await createBenchEnvironment('memory');
const redis = new Redis(env.redisUrl);
const loadBefore = os.loadavg();
try {
  const features = new FeatureStore(redis, {
    prefix: env.id,
    halfLifeHours: 168,
    weights: { VIEW: 1, CLICK: 2, ADD_TO_CART: 4, REMOVE_FROM_CART: 0, PURCHASE: 8 },
    shopperTtlDays: 30,
    ids: new ShopperIds(''),
  });
  const baselineBytesPerEvent = await measureBaseline(redis, env.id);

  const warmSeconds = await apply(features, synthesize(EVENTS, 1, 0), 'warm-up');
  const warm = await measure(redis, env.id);
  // Sessions from SHOPPERS on go to random shoppers: no new shopper comes.
  const moreSeconds = await apply(features, synthesize(MORE, EVENTS + 1, SHOPPERS), 'more');
  const after = await measure(redis, env.id);
  console.error(`warm: ${JSON.stringify(warm)}\nafter: ${JSON.stringify(after)}`);

  // Heavy shoppers, so every window fills: what one shopper can cost at most, and that it then stays flat.
  const heavyMatch = `${env.id}:f:u:${HEAVY_PREFIX}*`;
  let nextId = EVENTS + MORE + 1;
  const heavy = { shoppers: HEAVY_SHOPPERS, userPrefix: HEAVY_PREFIX };
  await apply(features, synthesize(HEAVY_SHOPPERS * HEAVY_EVENTS, nextId, 0, heavy), 'heavy');
  nextId += HEAVY_SHOPPERS * HEAVY_EVENTS;
  const heavyFull = await measure(redis, env.id, heavyMatch);
  await apply(features, synthesize(HEAVY_SHOPPERS * HEAVY_MORE, nextId, HEAVY_SHOPPERS, heavy), 'heavy more');
  const heavyAfter = await measure(redis, env.id, heavyMatch);
  const sample = `${env.id}:f:u:${HEAVY_PREFIX}0`;
  const heavyWindows = {
    historyItems: await redis.zcard(`${sample}:recent`),
    purchases: await redis.zcard(`${sample}:buys`),
    appliedIds: await redis.zcard(`${sample}:seen`),
    categories: await redis.hlen(`${sample}:cat`),
  };
  const heavyBytesByKey: Record<string, number> = {};
  for (const name of ['recent', 'weights', 'buys', 'seen', 'cat']) {
    heavyBytesByKey[name] = Number(await redis.memory('USAGE', `${sample}:${name}`, 'SAMPLES', 0));
  }

  const idle =
    SUBSCRIBERS > 0
      ? await measureIdleSubscriberBytes({
          databaseUrl: env.databaseUrl,
          redisUrl: env.redisUrl,
          prefix: env.id,
          subscribers: SUBSCRIBERS,
          query: WATCH,
          userIdPrefix: 'idle-',
        })
      : undefined;

  writeResults('memory', {
    setup:
      'synthetic events (sessions of 1–9 events on neighbouring items, Zipf-like item popularity, 70 % views, 16 % clicks, 8 % add-to-cart, 4 % purchases, 2 % removes) applied through FeatureStore.applyMany (the worker’s Lua script) in pipelines of 2000, two in flight; bytes are the exact sum of MEMORY USAGE … SAMPLES 0 over a SCAN of this run’s prefix only',
    redisBytesPerShopper: warm.shopperBytes / SHOPPERS,
    redisBytesPerEventAfterWarm: (after.totalBytes - warm.totalBytes) / MORE,
    // The heap a subscriber holds: the RSS delta after the warm-up round is allocator memory reused (about 0,
    // even negative, in runs here), while the heap delta is what the open subscriptions keep.
    subscriberKb: idle ? idle.heapBytesPerSubscriber / 1024 : null,
    counts: { shoppers: SHOPPERS, items: ITEMS, categories: CATEGORIES, events: EVENTS, moreEvents: MORE },
    afterWarm: { ...warm, eventsPerSecond: EVENTS / warmSeconds },
    afterMore: {
      ...after,
      redisBytesPerShopper: after.shopperBytes / SHOPPERS,
      eventsPerSecond: MORE / moreSeconds,
    },
    heavyShoppers: {
      what: `${HEAVY_SHOPPERS} shoppers with ${HEAVY_EVENTS} events each over the whole catalogue, one in five a purchase (every window full), then ${HEAVY_MORE} more each`,
      bytesPerShopperFull: heavyFull.shopperBytes / HEAVY_SHOPPERS,
      bytesPerShopperAfterMore: heavyAfter.shopperBytes / HEAVY_SHOPPERS,
      bytesPerEventAfterFull: (heavyAfter.shopperBytes - heavyFull.shopperBytes) / (HEAVY_SHOPPERS * HEAVY_MORE),
      windowsOfOne: heavyWindows,
      bytesByKeyOfOne: heavyBytesByKey,
    },
    keyPrefixBytes: `${env.id}:f:u:`.length,
    baseline: {
      what: 'the earlier design: one applied-marker key per event for 7 days (besides unbounded bought sets and no expiry)',
      bytesPerEvent: baselineBytesPerEvent,
      bytesFor7DaysAt500EventsPerSecond: baselineBytesPerEvent * 500 * 7 * 86_400,
    },
    idleSubscriberMemory: idle ?? null,
    loadAverage: { before: loadBefore, after: os.loadavg() },
    targets: { redisBytesPerShopperAtMost: 2048, redisBytesPerEventAfterWarm: 'flat once windows fill' },
  });
} finally {
  redis.disconnect();
  await env.drop();
}
