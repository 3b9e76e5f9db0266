import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { rebuildFeatures } from '../../src/services/feature-rebuild.ts';
import { FeatureStore } from '../../src/services/features.ts';
import { ItemAdmission } from '../../src/services/item-admission.ts';
import { startWorkers } from '../../src/workers/runtime.ts';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { sample, scrape } from '../helpers/prometheus.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const TRACK = `mutation($input: EventInput!) { trackEvent(input: $input) { eventId status } }`;
const RECOMMEND = `query($userId: ID!) { recommendations(userId: $userId, k: 5) { items { item { id } } } }`;
const WATCH = `subscription($userId: ID!) { recommendationsUpdated(userId: $userId, k: 5) { items { item { id } } causedBy { eventId } } }`;

interface ListBody {
  recommendations: { items: { item: { id: string } }[] };
}
interface Pushed {
  recommendationsUpdated: { items: { item: { id: string } }[]; causedBy: { eventId: string } | null };
}

async function seedCatalogue(gateway: RunningGateway, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => uniqueId('sku'));
  await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
    items: ids.map((id) => ({ id, name: id })),
  });
  return ids;
}

describe('faults', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('when the worker is stopped then events are still stored, and once it starts the backlog is processed and pushed', async () => {
    const config = await createTestConfig();
    const gateway = await startGateway(config, { workers: false });
    cleanups.push(() => gateway.stop());
    const [bought] = await seedCatalogue(gateway, 3);
    const userId = uniqueId('shopper');
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId });
    const initial = await subscription.next();
    const eventId = uniqueId('evt');

    const tracked = await gateway.graphql(TRACK, { input: { eventId, userId, type: 'PURCHASE', itemId: bought } });
    const storedBefore = await gateway.app.db.event.findUniqueOrThrow({ where: { eventId } });
    const workers = await startWorkers(config, {
      db: gateway.app.db,
      logger: createLogger('silent', 'test'),
      metrics: createMetrics(['worker']),
    });
    cleanups.push(() => workers.stop());
    // The workers' start may push a list of its own first (the features rebuild ending, trigger FEATURES):
    // the one that counts is the push naming the event.
    let pushed = await subscription.next(10_000);
    while (pushed.data?.recommendationsUpdated.causedBy?.eventId !== eventId) pushed = await subscription.next(10_000);

    expect(tracked.data).toEqual({ trackEvent: { eventId, status: 'ACCEPTED' } });
    expect(storedBefore.processedAt).toBeNull();
    expect(initial.data?.recommendationsUpdated.items.map((r) => r.item.id)).toContain(bought);
    expect(pushed.data?.recommendationsUpdated.causedBy?.eventId).toBe(eventId);
    expect(pushed.data?.recommendationsUpdated.items.map((r) => r.item.id)).not.toContain(bought);
    // Recorded as processed right after the push went out.
    await eventually(async () => (await gateway.app.db.event.findUniqueOrThrow({ where: { eventId } })).processedAt);
  });

  it('when Redis is unreachable then events are acknowledged from Postgres, and derived state catches up once it is back', async () => {
    const proxy: TcpProxy = await startTcpProxy(6379);
    cleanups.push(() => proxy.close());
    const config: Config = await createTestConfig({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
    const gateway = await startGateway(config);
    cleanups.push(() => gateway.stop());
    const [bought] = await seedCatalogue(gateway, 3);
    const userId = uniqueId('shopper');
    const eventId = uniqueId('evt');

    await proxy.cut();
    const tracked = await gateway.graphql(TRACK, { input: { eventId, userId, type: 'PURCHASE', itemId: bought } });
    const duringOutage = await gateway.app.db.event.findUniqueOrThrow({ where: { eventId } });
    await proxy.restore();

    expect(tracked.data).toEqual({ trackEvent: { eventId, status: 'ACCEPTED' } });
    expect(duringOutage.processedAt).toBeNull();
    // The outbox sweep re-queues the stored event; the worker applies it; the purchase leaves the shopper's list.
    await eventually(
      async () => (await gateway.app.db.event.findUniqueOrThrow({ where: { eventId } })).processedAt,
      15_000,
    );
    const after = await gateway.graphql<ListBody>(RECOMMEND, { userId });
    expect(after.data?.recommendations.items.map((r) => r.item.id)).not.toContain(bought);
  });

  it('when Redis is unreachable then recommendations fail with a clear error instead of hanging', async () => {
    const proxy = await startTcpProxy(6379);
    cleanups.push(() => proxy.close());
    const config = await createTestConfig({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
    const gateway = await startGateway(config, { workers: false });
    cleanups.push(() => gateway.stop());
    // Whole features, as a worker leaves them (none runs here): the lists read Redis, not a rebuild's fallback.
    const redis = createRedis(config.REDIS_URL, 'command');
    await connectRedis(redis, config.REDIS_URL);
    await FeatureStore.fromConfig(redis, config).markRebuilt();
    redis.disconnect();
    await gateway.app.fallback.check();

    await proxy.cut();
    const body = await gateway.graphql(RECOMMEND, { userId: uniqueId('shopper') });
    const ready = await fetch(`${gateway.url}/ready`);
    const scrapeStarted = Date.now();
    const metrics = await scrape(gateway.url);
    const scrapeMs = Date.now() - scrapeStarted;
    await proxy.restore();

    expect(body.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ postgres: 'ok', redis: 'unavailable' });
    // The scrape still answers, at once, with what it knows: Redis errors counted, no queue depth.
    expect(scrapeMs).toBeLessThan(2000);
    expect(sample(metrics, 'pgw_dependency_errors_total', { dependency: 'redis' })).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'pgw_queue_waiting_jobs', { queue: 'events' })).toBeUndefined();
  });

  it('when Redis loses its data then lists stay honest meanwhile, and replaying the event log restores them', async () => {
    // The worker's own check for lost features runs with the sweep: kept out of the way, the test replays by hand.
    const config = await createTestConfig({ OUTBOX_SWEEP_INTERVAL_MS: '600000' });
    const gateway = await startGateway(config);
    cleanups.push(() => gateway.stop());
    const items = await seedCatalogue(gateway, 4);
    const userId = uniqueId('shopper');
    const inputs = [
      ...items
        .slice(0, 3)
        .flatMap((itemId, rank) =>
          Array.from({ length: 3 - rank }, () => ({ userId: uniqueId('crowd'), type: 'PURCHASE', itemId })),
        ),
      { userId, type: 'PURCHASE', itemId: items[0] },
    ];
    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, { inputs });
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0);
    const before = await gateway.graphql<ListBody>(RECOMMEND, { userId });
    await gateway.app.fallback.check();
    const redis = createRedis(config.REDIS_URL, 'command');
    await connectRedis(redis, config.REDIS_URL);
    cleanups.push(async () => redis.disconnect());
    const features = FeatureStore.fromConfig(redis, config);

    await features.clear();
    await gateway.app.fallback.check();
    const lost = await gateway.graphql<ListBody>(RECOMMEND, { userId });
    const replayed = await rebuildFeatures(
      gateway.app.db,
      features,
      new ItemAdmission({ db: gateway.app.db, maxPlaceholders: config.MAX_PLACEHOLDER_ITEMS }),
    );
    const after = await gateway.graphql<ListBody>(RECOMMEND, { userId });

    expect(before.data?.recommendations.items.map((r) => r.item.id)).toEqual([items[1], items[2], items[3]]);
    // Not the half-empty features (which would offer the bought item again): the last good trending and the
    // shopper's purchases from Postgres.
    expect(lost.data).toEqual(before.data);
    expect(replayed).toBe(inputs.length);
    expect(after.data).toEqual(before.data);
  });

  it('when Redis loses its data while the worker runs then the worker notices and replays the log by itself', async () => {
    const config = await createTestConfig();
    const gateway = await startGateway(config);
    cleanups.push(() => gateway.stop());
    const items = await seedCatalogue(gateway, 3);
    const userId = uniqueId('shopper');
    const inputs = [
      ...items.flatMap((itemId, rank) =>
        Array.from({ length: 3 - rank }, () => ({ userId: uniqueId('crowd'), type: 'PURCHASE', itemId })),
      ),
      { userId, type: 'VIEW', itemId: items[2] },
    ];
    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, { inputs });
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0);
    const shopper = `query($userId: ID!) { shopper(userId: $userId) { recentItems { id } } }`;
    const before = await gateway.graphql(shopper, { userId });
    const redis = createRedis(config.REDIS_URL, 'command');
    await connectRedis(redis, config.REDIS_URL);
    cleanups.push(async () => redis.disconnect());
    const features = FeatureStore.fromConfig(redis, config);

    await features.clear();
    const lost = await features.needsRebuild();
    await eventually(async () => !(await features.needsRebuild()), 15_000);
    const after = await gateway.graphql(shopper, { userId });
    const trending = await features.trending(3);

    expect(lost).toBe(true);
    expect(after.data).toEqual(before.data);
    expect(trending.map((entry) => entry.itemId)).toEqual(items);
  });
});
