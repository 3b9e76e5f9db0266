import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { FeatureStore } from '../../src/services/features.ts';
import { RebuildFallback } from '../../src/services/rebuild-fallback.ts';
import { ReplayStatus } from '../../src/services/replay-status.ts';
import { createReplayQueue, requestReplay } from '../../src/workers/queues.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, redisTestPrefix, uniqueId } from '../helpers/test-env.ts';

const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const TRENDING = `{ trending(k: 3) { item { id } } }`;
const RECOMMEND = `query($userId: ID!) { recommendations(userId: $userId, k: 3) { items { item { id } reason } } }`;

interface Ready {
  status: string;
  warming: { features?: { state: string; trending: string; percent?: number; done?: number; total?: number } };
}
interface TrendingBody {
  trending: { item: { id: string } }[];
}
interface ListBody {
  recommendations: { items: { item: { id: string }; reason: string }[] };
}

describe('lists while the online features are rebuilt', () => {
  let config: Config;
  let gateway: RunningGateway;
  let redis: Redis;
  let features: FeatureStore;
  const items = [uniqueId('top'), uniqueId('second'), uniqueId('third'), uniqueId('unsold')];
  const shopper = uniqueId('shopper');

  const ready = async () => (await (await fetch(`${gateway.url}/ready`)).json()) as Ready;
  const trendingIds = async () =>
    (await gateway.graphql<TrendingBody>(TRENDING)).data?.trending.map((entry) => entry.item.id);

  beforeAll(async () => {
    // The worker's own check for lost features runs with the sweep: kept out of the way, the tests decide.
    config = await createTestConfig({ OUTBOX_SWEEP_INTERVAL_MS: '600000' });
    gateway = await startGateway(config);
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: items.map((id) => ({ id, name: id })),
    });
    // Trending: top 3 purchases, second 2, third 1; the shopper bought the top item.
    const inputs = [
      ...items
        .slice(0, 3)
        .flatMap((itemId, rank) =>
          Array.from({ length: 3 - rank }, () => ({ userId: uniqueId('crowd'), type: 'PURCHASE', itemId })),
        ),
      { userId: shopper, type: 'PURCHASE', itemId: items[0] },
    ];
    await gateway.graphql(TRACK_MANY, { inputs });
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0);
    redis = createRedis(config.REDIS_URL, 'command');
    await connectRedis(redis, config.REDIS_URL);
    features = FeatureStore.fromConfig(redis, config);
  });
  afterAll(async () => {
    redis.disconnect();
    await gateway.stop();
  });

  it('when Redis loses the features then /ready says rebuilding, and trending and bought items come from what is whole until a replay ends', async () => {
    const before = await trendingIds();
    // This gateway's last good list holds everything processed so far.
    await gateway.app.fallback.check();

    await features.clear();
    // Half-empty features: one event replayed so far, for an item nobody bought much.
    await features.applyMany([
      {
        id: 1n,
        eventId: uniqueId('evt'),
        userId: uniqueId('crowd'),
        type: 'PURCHASE',
        itemId: items[3] ?? '',
        category: null,
        occurredAt: new Date(),
        receivedAt: new Date(),
      },
    ]);
    const lost = await eventually(async () => {
      const body = await ready();
      return body.status === 'rebuilding' ? body : undefined;
    });
    const during = await trendingIds();
    const list = await gateway.graphql<ListBody>(RECOMMEND, { userId: shopper });
    await requestReplay(createReplayQueue(redis, config.REDIS_PREFIX), 'test');
    const after = await eventually(async () => {
      const body = await ready();
      return body.status === 'ready' ? body : undefined;
    }, 15_000);

    expect(before).toEqual(items.slice(0, 3));
    expect(lost.warming.features).toMatchObject({ state: 'lost' });
    expect(lost.warming.features?.trending).toBe('last-good');
    expect(during).toEqual(items.slice(0, 3));
    // The purchase is read from the log: the top item is not offered back.
    expect(list.data?.recommendations.items).toEqual([
      { item: { id: items[1] }, reason: 'trending' },
      { item: { id: items[2] }, reason: 'trending' },
      // Not trending in the last good list: the half-replayed purchase does not count.
      { item: { id: items[3] }, reason: 'catalogue' },
    ]);
    expect(after.warming.features).toBeUndefined();
    expect(await trendingIds()).toEqual(items.slice(0, 3));
  });

  it('when a replay reports progress then /ready says rebuilding with its percent and counts', async () => {
    const status = new ReplayStatus(redis, config.REDIS_PREFIX);

    await status.report({ task: 'replay', done: 400, total: 1000, percent: 40, perSecond: 100, etaSeconds: 6 });
    const body = await ready();
    await status.clear();

    expect(body).toMatchObject({
      status: 'rebuilding',
      warming: { features: { state: 'replaying', percent: 40, done: 400, total: 1000 } },
    });
  });

  it('when a rebuild ends then the fallback tells its listeners once, and not while the features stay whole', async () => {
    const store = FeatureStore.fromConfig(redis, { ...config, REDIS_PREFIX: uniqueId('complete') });
    const fallback = new RebuildFallback({
      features: store,
      db: gateway.app.db,
      logger: createLogger('silent', 'test'),
      halfLifeHours: config.POPULARITY_HALF_LIFE_HOURS,
      weights: config.EVENT_WEIGHTS,
    });
    let completions = 0;
    fallback.onComplete(() => completions++);

    await store.markRebuilt();
    await fallback.check();
    const whileWhole = completions;
    await store.clear();
    await fallback.check();
    const whileRebuilding = completions;
    await store.markRebuilt();
    await fallback.check();
    await fallback.check();
    await store.clear();

    expect(whileWhole).toBe(0);
    expect(whileRebuilding).toBe(0);
    expect(completions).toBe(1);
  });

  it('when the features were whole and then a rebuild starts then trending is the last good list, and without one the newest events in Postgres', async () => {
    const prefix = redisTestPrefix('fallback');
    const store = FeatureStore.fromConfig(redis, { ...config, REDIS_PREFIX: prefix });
    const options = {
      features: store,
      db: gateway.app.db,
      logger: createLogger('silent', 'test'),
      halfLifeHours: config.POPULARITY_HALF_LIFE_HOURS,
      weights: config.EVENT_WEIGHTS,
    };
    const event = (id: bigint, itemId: string) => ({
      id,
      eventId: uniqueId('evt'),
      userId: uniqueId('crowd'),
      type: 'VIEW' as const,
      itemId,
      category: null,
      occurredAt: new Date(),
      receivedAt: new Date(),
    });
    await store.applyMany([event(1n, 'kept-a'), event(2n, 'kept-a'), event(3n, 'kept-b')]);
    await store.markRebuilt();
    const sawWhole = new RebuildFallback(options);
    await sawWhole.check();

    await store.clear();
    await store.applyMany([event(4n, 'half-replayed')]);
    await sawWhole.check();
    const neverSawWhole = new RebuildFallback(options);
    await neverSawWhole.check();
    const fromLastGood = await sawWhole.trending(10);
    const fromPostgres = await neverSawWhole.trending(10);
    await store.clear();

    expect(sawWhole.rebuilding).toBe(true);
    expect(sawWhole.origin).toBe('last-good');
    expect(fromLastGood.map((entry) => entry.itemId)).toEqual(['kept-a', 'kept-b']);
    expect(fromLastGood[0]?.score).toBe(1);
    expect(neverSawWhole.origin).toBe('postgres');
    // This database's log: the crowd's purchases, the top item bought by the shopper too.
    expect(fromPostgres.map((entry) => entry.itemId)).toEqual(items.slice(0, 3));
  });
});
