import { PrismaPg } from '@prisma/adapter-pg';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { createDb, type Db } from '../../src/db/client.ts';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { createLogger } from '../../src/logger.ts';
import { PubSub } from '../../src/realtime/pubsub.ts';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { EventAttributor, RecommendationIds } from '../../src/services/experiment-ids.ts';
import { rebuildFeatures } from '../../src/services/feature-rebuild.ts';
import { APPLIED_IDS_KEPT, BOUGHT_ITEMS_KEPT, type FeatureEvent, FeatureStore } from '../../src/services/features.ts';
import { ItemAdmission } from '../../src/services/item-admission.ts';
import { NewItemVectors } from '../../src/services/new-item-vectors.ts';
import { ShopperVectors } from '../../src/services/shopper-vectors.ts';
import { ProcessedMarker } from '../../src/workers/processed-marker.ts';
import { makeApplyEventsProcessor } from '../../src/workers/processors/apply-events.ts';
import { createEventsQueue, EVENT_JOB_OPTIONS, type EventJob, type QueuedEvent } from '../../src/workers/queues.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { eventId status } }`;
const SHOPPER = `query($userId: ID!) { shopper(userId: $userId) { recentItems { id } boughtItemIds } }`;

interface ShopperBody {
  shopper: { recentItems: { id: string }[]; boughtItemIds: string[] };
}

async function connect(config: Config): Promise<Redis> {
  const redis = createRedis(config.REDIS_URL, 'command');
  await connectRedis(redis, config.REDIS_URL);
  return redis;
}

/** Every feature key of the prefix with its content, as Redis holds it (expiry left out). */
async function snapshot(redis: Redis, prefix: string): Promise<Record<string, unknown>> {
  const keys: string[] = [];
  for await (const batch of redis.scanStream({ match: `${prefix}:f:*`, count: 1000 }) as AsyncIterable<string[]>) {
    keys.push(...batch);
  }
  const state: Record<string, unknown> = {};
  for (const key of keys.sort()) {
    const type = await redis.type(key);
    if (type === 'zset') state[key] = await redis.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'hash') state[key] = await redis.hgetall(key);
    else if (type === 'string') state[key] = (await redis.getBuffer(key))?.toString('base64');
    else state[key] = type;
  }
  return state;
}

async function shopperKeys(redis: Redis, prefix: string, userId: string): Promise<string[]> {
  const keys: string[] = [];
  const stream = redis.scanStream({ match: `${prefix}:f:u:${userId}:*`, count: 1000 });
  for await (const batch of stream as AsyncIterable<string[]>) keys.push(...batch);
  return keys;
}

async function allProcessed(db: Db): Promise<boolean> {
  return (await db.event.count({ where: { processedAt: null } })) === 0;
}

describe('feature store windows (Redis only)', () => {
  let config: Config;
  let redis: Redis;
  let features: FeatureStore;
  let db: Db;

  beforeAll(async () => {
    config = await createTestConfig();
    redis = await connect(config);
    features = FeatureStore.fromConfig(redis, config);
    db = createDb(config.DATABASE_URL, { poolSize: 2, onError: () => undefined });
  });
  afterAll(async () => {
    redis.disconnect();
    await db.$disconnect();
  });

  const event = (userId: string, id: number, overrides: Partial<FeatureEvent> = {}): FeatureEvent => ({
    id: BigInt(id),
    eventId: `e-${userId}-${id}`,
    userId,
    type: 'VIEW',
    itemId: `item-${id}`,
    category: null,
    occurredAt: new Date(Date.UTC(2026, 0, 1) + id * 1000),
    receivedAt: new Date(Date.UTC(2026, 0, 1) + id * 1000),
    ...overrides,
  });

  it('when an event among the shopper’s newest applied ids comes again then nothing changes', async () => {
    const userId = uniqueId('shopper');
    const events = [1, 2, 3].map((id) => event(userId, id, { type: 'PURCHASE', category: 'kitchen' }));
    await features.applyMany(events);
    const before = await snapshot(redis, config.REDIS_PREFIX);

    await features.applyMany([events[1]!, events[0]!]);

    expect(await snapshot(redis, config.REDIS_PREFIX)).toEqual(before);
  });

  it('when a shopper buys more items than the window keeps then only the newest purchases are kept', async () => {
    const userId = uniqueId('shopper');
    const purchases = Array.from({ length: BOUGHT_ITEMS_KEPT + 5 }, (_, i) =>
      event(userId, i + 1, { type: 'PURCHASE' }),
    );

    await features.applyMany(purchases);
    const bought = await features.boughtItems(userId);
    const applied = await redis.zcard(`${config.REDIS_PREFIX}:f:u:${userId}:seen`);

    expect(bought.size).toBe(BOUGHT_ITEMS_KEPT);
    expect(bought.has('item-5')).toBe(false);
    expect(bought.has('item-6')).toBe(true);
    expect(bought.has(`item-${BOUGHT_ITEMS_KEPT + 5}`)).toBe(true);
    expect(applied).toBe(APPLIED_IDS_KEPT);
  });

  it('when two jobs restore the same shopper at once then each earlier event counts once', async () => {
    const [once, twice] = [uniqueId('shopper'), uniqueId('shopper')];
    // More events than the applied-id window keeps, on few items, so a double count would show in the weights.
    const earlier = (userId: string) =>
      Array.from({ length: 3 * APPLIED_IDS_KEPT }, (_, i) => event(userId, i + 1, { itemId: `item-${i % 7}` }));

    await features.restoreShoppers(earlier(once), [], [once]);
    const restoredTwice = await Promise.all([
      features.restoreShoppers(earlier(twice), [], [twice]),
      features.restoreShoppers(earlier(twice), [], [twice]),
    ]);
    const single = await features.restoreShoppers([], [], [once]);

    expect(restoredTwice[1]?.get(twice)).toEqual(single.get(once));
  });

  it('when a Redis holds the earlier layout (a plain set of bought items, no marker) then it needs a rebuild and applying does not fail', async () => {
    const userId = uniqueId('shopper');
    await redis.sadd(`${config.REDIS_PREFIX}:f:u:${userId}:bought`, 'old-item');
    await redis.zadd(`${config.REDIS_PREFIX}:f:trending`, 1, 'old-item');

    const needed = await features.needsRebuild();
    await features.applyMany([event(userId, 1, { type: 'PURCHASE' })]);

    expect(needed).toBe(true);
    expect([...(await features.boughtItems(userId))]).toEqual(['item-1']);
  });

  it('when the prefix is empty then a rebuild is needed, and after one it is not', async () => {
    await features.clear();

    const before = await features.needsRebuild();
    const replayed = await rebuildFeatures(db, features, new ItemAdmission({ db, maxPlaceholders: 100 }));

    expect(before).toBe(true);
    expect(replayed).toBe(0);
    expect(await features.needsRebuild()).toBe(false);
  });
});

describe('feature worker memory and idempotence (gateway with workers)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(overrides: Record<string, string> = {}) {
    const config = await createTestConfig(overrides);
    const gateway: RunningGateway = await startGateway(config);
    cleanups.push(() => gateway.stop());
    const redis = await connect(config);
    cleanups.push(async () => redis.disconnect());
    const items = Array.from({ length: 4 }, () => uniqueId('sku'));
    await gateway.graphql(UPSERT, { items: items.map((id) => ({ id, name: id, category: 'kitchen' })) });
    return { config, gateway, redis, items, features: FeatureStore.fromConfig(redis, config) };
  }

  it('when the same job is delivered twice then the second delivery changes nothing', async () => {
    const { config, gateway, redis, items } = await start();
    const userId = uniqueId('shopper');
    await gateway.graphql(TRACK_MANY, {
      inputs: items.slice(0, 3).map((itemId, i) => ({ userId, type: i === 2 ? 'PURCHASE' : 'VIEW', itemId })),
    });
    await eventually(() => allProcessed(gateway.app.db));
    const before = await snapshot(redis, config.REDIS_PREFIX);
    const rows = await gateway.app.db.event.findMany({ where: { userId }, orderBy: { id: 'asc' } });
    const events: QueuedEvent[] = rows.map((row) => ({
      id: row.id.toString(),
      eventId: row.eventId,
      userId: row.userId,
      type: row.type,
      itemId: row.itemId,
      category: 'kitchen',
      occurredAt: row.occurredAt.toISOString(),
      receivedAt: row.receivedAt.toISOString(),
    }));
    const queue = createEventsQueue(redis, config.REDIS_PREFIX);
    cleanups.push(() => queue.close());
    const jobId = uniqueId('redelivery');

    await queue.add('apply', { eventIds: events.map((e) => e.eventId), events }, { ...EVENT_JOB_OPTIONS, jobId });
    await eventually(async () => (await queue.getJob(jobId)) === undefined);

    expect(await snapshot(redis, config.REDIS_PREFIX)).toEqual(before);
  });

  it('when the log is replayed then the features equal those the live worker built', async () => {
    // The worker's check for lost features runs with the sweep: kept out of the way, the test replays by hand.
    const { config, gateway, redis, items, features } = await start({ OUTBOX_SWEEP_INTERVAL_MS: '600000' });
    const shoppers = [uniqueId('shopper'), uniqueId('shopper'), uniqueId('shopper')];
    const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 12, minute)).toISOString();
    await gateway.graphql(TRACK_MANY, {
      inputs: shoppers.flatMap((userId, s) =>
        items.map((itemId, i) => ({
          userId,
          itemId,
          type: (i + s) % 3 === 0 ? 'PURCHASE' : 'VIEW',
          occurredAt: at(s * 5 + i),
        })),
      ),
    });
    await eventually(() => allProcessed(gateway.app.db));
    // Vectors are the fold-in's (no model here, so none); the rest is what the script built.
    const live = await snapshot(redis, config.REDIS_PREFIX);

    const replayed = await rebuildFeatures(
      gateway.app.db,
      features,
      new ItemAdmission({ db: gateway.app.db, maxPlaceholders: 100 }),
    );

    expect(replayed).toBe(shoppers.length * items.length);
    expect(await snapshot(redis, config.REDIS_PREFIX)).toEqual(live);
  });

  it('when a shopper’s keys expire then their next event rebuilds their history from Postgres without counting it in trending again', async () => {
    // 1.5 s of inactivity.
    const { config, gateway, redis, items } = await start({ SHOPPER_TTL_DAYS: String(1.5 / 86_400) });
    const [viewed, bought, next] = items;
    const userId = uniqueId('shopper');
    const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();
    await gateway.graphql(TRACK_MANY, {
      inputs: [
        { userId, type: 'VIEW', itemId: viewed, occurredAt: ago(60) },
        { userId, type: 'PURCHASE', itemId: bought, occurredAt: ago(30) },
      ],
    });
    await eventually(() => allProcessed(gateway.app.db));
    const trendingKey = `${config.REDIS_PREFIX}:f:trending`;
    const trendingBefore = await redis.zmscore(trendingKey, viewed!, bought!);
    const before = await gateway.graphql<ShopperBody>(SHOPPER, { userId });

    await eventually(async () => (await shopperKeys(redis, config.REDIS_PREFIX, userId)).length === 0, 10_000);
    const expired = await gateway.graphql<ShopperBody>(SHOPPER, { userId });
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'VIEW', itemId: next }] });
    await eventually(() => allProcessed(gateway.app.db));
    const after = await gateway.graphql<ShopperBody>(SHOPPER, { userId });

    expect(before.data?.shopper).toEqual({ recentItems: [{ id: bought }, { id: viewed }], boughtItemIds: [bought] });
    expect(expired.data?.shopper).toEqual({ recentItems: [], boughtItemIds: [] });
    expect(after.data?.shopper).toEqual({
      recentItems: [{ id: next }, { id: bought }, { id: viewed }],
      boughtItemIds: [bought],
    });
    expect(await redis.zmscore(trendingKey, viewed!, bought!)).toEqual(trendingBefore);
  });
});

describe('the feature worker’s Postgres reads', () => {
  it('when a new shopper’s event is applied then their history is read once, and for their next event not at all', async () => {
    const config = await createTestConfig();
    const [redis, subscriber] = [await connect(config), await connect(config)];
    const db = new PrismaClient({
      adapter: new PrismaPg({ connectionString: config.DATABASE_URL, max: 2 }),
      log: [{ emit: 'event', level: 'query' }],
    });
    let eventReads = 0;
    // Reads of the event log only; recording processed events (an UPDATE, on a timer) is not one.
    db.$on('query', ({ query }) => {
      if (query.includes('FROM "Event"')) eventReads++;
    });
    const prefix = config.REDIS_PREFIX;
    const logger = createLogger('silent', 'test');
    const features = FeatureStore.fromConfig(redis, config);
    const processed = new ProcessedMarker({ db, logger });
    const processor = makeApplyEventsProcessor({
      db,
      features,
      admission: new ItemAdmission({ db, maxPlaceholders: 100 }),
      vectors: new ShopperVectors({ db, redis, features, newItems: new NewItemVectors({ redis, prefix }) }),
      pubsub: new PubSub({ publisher: redis, subscriber, prefix }),
      processed,
      attributor: new EventAttributor(new RecommendationIds(Buffer.from('feature-memory-test-key')), { inc() {} }),
      logger,
      redis,
    });
    const queue = createEventsQueue(redis, prefix);
    const userId = uniqueId('shopper');
    const job = (id: number) => {
      const event: QueuedEvent = {
        id: String(id),
        eventId: uniqueId('evt'),
        userId,
        type: 'VIEW',
        itemId: `item-${id}`,
        category: null,
        occurredAt: new Date().toISOString(),
        receivedAt: new Date().toISOString(),
      };
      return new Job<EventJob>(queue, 'apply', { eventIds: [event.eventId], events: [event] });
    };
    // As a worker's start leaves it: the log replayed, the layout marked.
    await features.markRebuilt();

    await processor(job(1));
    const readsForNewShopper = eventReads;
    await processor(job(2));
    const readsForKnownShopper = eventReads - readsForNewShopper;

    expect(readsForNewShopper).toBe(1);
    expect(readsForKnownShopper).toBe(0);
    expect(await features.recentItems(userId)).toEqual(['item-2', 'item-1']);
    await processed.flush();
    await queue.close();
    await db.$disconnect();
    redis.disconnect();
    subscriber.disconnect();
  });
});
