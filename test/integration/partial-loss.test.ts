import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { rebuildFeatures } from '../../src/services/feature-rebuild.ts';
import { FeatureStore } from '../../src/services/features.ts';
import { ItemAdmission } from '../../src/services/item-admission.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;

/** Every key of a prefix with its value and expiry, as DUMP gives them. */
async function snapshot(redis: Redis, prefix: string) {
  const keys: string[] = [];
  for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
    keys.push(...batch);
  }
  return Promise.all(
    keys.map(async (key) => ({ key, value: await redis.dumpBuffer(key), ttl: await redis.pttl(key) })),
  );
}

/** Puts a prefix back to a snapshot: what a Redis restarted from an AOF missing its last writes holds. */
async function rollBack(redis: Redis, prefix: string, saved: Awaited<ReturnType<typeof snapshot>>) {
  // Saved keys first (the layout marker among them), then the newer ones go: at no moment does the running
  // worker see a Redis without the marker, which would be a full loss, not a partial one.
  for (const { key, value, ttl } of saved) {
    if (value) await redis.restore(key, Math.max(ttl, 0), value, 'REPLACE');
  }
  const keep = new Set(saved.map(({ key }) => key));
  for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
    const newer = batch.filter((key) => !keep.has(key));
    if (newer.length) await redis.unlink(...newer);
  }
}

describe('a Redis that lost only its latest writes', () => {
  let config: Config;
  let gateway: RunningGateway;
  let redis: Redis;

  beforeAll(async () => {
    config = await createTestConfig();
    gateway = await startGateway(config);
    redis = createRedis(config.REDIS_URL, 'command');
    await connectRedis(redis, config.REDIS_URL);
  });
  afterAll(async () => {
    redis.disconnect();
    await gateway.stop();
  });

  it('when Redis comes back holding an earlier part of its writes then the worker notices and applies again what was lost, and the features equal a replay', async () => {
    const [early, late] = [uniqueId('early'), uniqueId('late')];
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: [early, late].map((id) => ({ id, name: id })),
    });
    const shopper = uniqueId('shopper');
    const processed = () =>
      eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 15_000);
    const features = FeatureStore.fromConfig(redis, config);
    await gateway.graphql(TRACK_MANY, {
      inputs: [
        { userId: shopper, type: 'VIEW', itemId: early },
        { userId: uniqueId('crowd'), type: 'PURCHASE', itemId: early },
      ],
    });
    await processed();
    // A sweep has written this worker's checkpoint since: the snapshot holds it, as an AOF would.
    await eventually(async () => (await redis.keys(`${config.REDIS_PREFIX}:checkpoint:*`)).length > 0);
    const saved = await snapshot(redis, config.REDIS_PREFIX);
    await gateway.graphql(TRACK_MANY, {
      inputs: [
        { userId: shopper, type: 'PURCHASE', itemId: late },
        ...Array.from({ length: 3 }, () => ({ userId: uniqueId('crowd'), type: 'PURCHASE', itemId: late })),
      ],
    });
    await processed();
    // And a sweep after them, so the checkpoint Redis will lose is newer than the saved one.
    const savedCheckpoint = saved.find(({ key }) => key.includes(':checkpoint:'))?.key ?? '';
    const before = await redis.get(savedCheckpoint);
    await eventually(async () => (await redis.get(savedCheckpoint)) !== before);

    await rollBack(redis, config.REDIS_PREFIX, saved);
    const lost = (await features.trending(10)).map((entry) => entry.itemId);
    await eventually(async () => (await features.trending(10)).some((entry) => entry.itemId === late), 20_000);
    await processed();
    const replay = FeatureStore.fromConfig(redis, { ...config, REDIS_PREFIX: `${config.REDIS_PREFIX}-replay` });
    await rebuildFeatures(gateway.app.db, replay, new ItemAdmission({ db: gateway.app.db, maxPlaceholders: 10 }));
    const [healed, truth] = await Promise.all([features.trending(10), replay.trending(10)]);
    const [mine, theirs] = await Promise.all([features.shopperFeatures([shopper]), replay.shopperFeatures([shopper])]);
    await replay.clear();

    expect(lost).toEqual([early]);
    expect(healed.map((entry) => entry.itemId)).toEqual(truth.map((entry) => entry.itemId));
    healed.forEach((entry, index) => {
      expect(entry.logScore).toBeCloseTo(truth[index]?.logScore ?? Number.NaN, 9);
    });
    expect(mine).toEqual(theirs);
    expect(mine.get(shopper)?.bought.has(late)).toBe(true);
  });
});
