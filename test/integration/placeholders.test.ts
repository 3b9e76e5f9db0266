import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { rebuildFeatures } from '../../src/services/feature-rebuild.ts';
import { FeatureStore } from '../../src/services/features.ts';
import { ItemAdmission } from '../../src/services/item-admission.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, redisTestPrefix, uniqueId } from '../helpers/test-env.ts';

const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;

describe('placeholder items', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(overrides: Record<string, string>) {
    const config: Config = await createTestConfig(overrides);
    const gateway: RunningGateway = await startGateway(config);
    cleanups.push(() => gateway.stop());
    const redis: Redis = createRedis(config.REDIS_URL, 'command');
    await connectRedis(redis, config.REDIS_URL);
    cleanups.push(async () => redis.disconnect());
    const features = FeatureStore.fromConfig(redis, config);
    const placeholders = async () =>
      (await gateway.app.db.item.findMany({ where: { placeholder: true }, orderBy: { id: 'asc' } })).map(
        (item) => item.id,
      );
    const trending = async () => (await features.trending(1000)).map((entry) => entry.itemId).sort();
    const processed = () =>
      eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 15_000);
    const track = (itemIds: readonly string[]) =>
      gateway.graphql(TRACK_MANY, {
        inputs: itemIds.map((itemId) => ({ userId: uniqueId('shopper'), type: 'VIEW', itemId })),
      });
    return { config, gateway, features, placeholders, trending, processed, track };
  }

  it('when events name more unknown items than MAX_PLACEHOLDER_ITEMS then only that many placeholders are kept, and trending counts only them and the catalogue, also after a replay', async () => {
    const { config, gateway, features, placeholders, trending, processed, track } = await start({
      MAX_PLACEHOLDER_ITEMS: '3',
    });
    const prefix = redisTestPrefix('made-up');
    const unknown = Array.from({ length: 10 }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
    const catalogue = [uniqueId('sku'), uniqueId('sku')];
    await gateway.graphql(UPSERT, { items: catalogue.map((id) => ({ id, name: id })) });

    const tracked = await track([...catalogue, ...unknown]);
    await processed();
    const kept = await placeholders();
    const live = await trending();
    await rebuildFeatures(
      gateway.app.db,
      features,
      new ItemAdmission({ db: gateway.app.db, maxPlaceholders: config.MAX_PLACEHOLDER_ITEMS }),
    );
    const replayed = await trending();

    expect(tracked.errors).toBeUndefined();
    // In id order, so every worker agrees which unknown ids got the room.
    expect(kept).toEqual(unknown.slice(0, 3));
    expect(live).toEqual([...catalogue, ...kept].sort());
    expect(replayed).toEqual(live);
    expect(await gateway.app.db.event.count()).toBe(12);
  });

  it('when a placeholder is not declared within PLACEHOLDER_WINDOW_HOURS then the worker prunes it and drops it from trending, which makes room for another', async () => {
    // A window of about five seconds.
    const { gateway, placeholders, trending, processed, track } = await start({
      MAX_PLACEHOLDER_ITEMS: '2',
      PLACEHOLDER_WINDOW_HOURS: String(5 / 3600),
    });
    const prefix = redisTestPrefix('late');
    const [stale, declared, third] = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
    await track([stale, declared, third]);
    await processed();
    const before = { placeholders: await placeholders(), trending: await trending() };

    await gateway.graphql(UPSERT, { items: [{ id: declared, name: 'Declared in time' }] });
    await eventually(async () => !(await placeholders()).includes(stale), 30_000);
    const afterPrune = {
      trending: await trending(),
      items: await gateway.app.db.item.findMany({ where: { id: { startsWith: prefix } } }),
    };
    await track([third]);
    await processed();

    expect(before).toEqual({ placeholders: [stale, declared], trending: [stale, declared] });
    expect(afterPrune.trending).toEqual([declared]);
    expect(afterPrune.items.map((item) => ({ id: item.id, placeholder: item.placeholder }))).toEqual([
      { id: declared, placeholder: false },
    ]);
    expect(await placeholders()).toEqual([third]);
    expect(await trending()).toEqual([declared, third]);
  });
});
