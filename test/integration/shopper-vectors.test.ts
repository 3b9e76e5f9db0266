import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HnswIndex } from '../../src/ann/index.ts';
import { createDb, type Db } from '../../src/db/client.ts';
import { completeModelVersion, createModelVersion } from '../../src/db/models.ts';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { FeatureStore } from '../../src/services/features.ts';
import { NewItemVectors } from '../../src/services/new-item-vectors.ts';
import { ShopperVectors } from '../../src/services/shopper-vectors.ts';
import { createTestConfig } from '../helpers/test-env.ts';

const ITEMS = ['a', 'b', 'c', 'd'];

/** A READY ALS version over ITEMS, as the trainer stores one. */
async function storeVersion(db: Db, seed: number): Promise<number> {
  const factors = 2;
  const itemFactors = Float32Array.from({ length: ITEMS.length * factors }, (_, i) => Math.sin(i + seed));
  const index = HnswIndex.build({ space: 'ip', dim: factors, ids: ITEMS, vectors: itemFactors });
  const version = await createModelVersion(db, 'als', { lambda: 0.1, alpha: 10, confidence: 'linear', epsilon: 1 });
  await completeModelVersion(
    db,
    version.id,
    { events: 0, users: 0, items: ITEMS.length },
    {
      factors,
      itemIds: ITEMS,
      itemFactors,
      userIds: [],
      userFactors: new Float32Array(0),
      itemIndex: await index.serialize(),
    },
    false,
  );
  return version.id;
}

describe('the worker’s model for fold-in', () => {
  let db: Db;
  let redis: Redis;
  let vectors: ShopperVectors;
  let first: number;
  let second: number;

  beforeAll(async () => {
    const config = await createTestConfig();
    db = createDb(config.DATABASE_URL, { poolSize: 2, onError: () => undefined });
    redis = createRedis(config.REDIS_URL, 'command');
    await connectRedis(redis, config.REDIS_URL);
    const features = FeatureStore.fromConfig(redis, config);
    vectors = new ShopperVectors({
      db,
      redis,
      features,
      newItems: new NewItemVectors({ redis, prefix: config.REDIS_PREFIX }),
    });
    first = await storeVersion(db, 1);
    second = await storeVersion(db, 2);
  });
  afterAll(async () => {
    await db.$disconnect();
    redis.disconnect();
  });

  /** The version the next fold-in runs against. */
  const foldingWith = async () => {
    const pipeline = redis.pipeline();
    const refreshed = await vectors.refresh(new Map([['shopper', new Map([['a', 1]])]]), pipeline);
    return refreshed?.versionId;
  };

  it('when a rollback to the version in use arrives while another version loads then the rollback wins', async () => {
    await vectors.useVersion(first);
    const activated = vectors.useVersion(second);
    // The operator rolls back before the activated version has loaded.
    await vectors.useVersion(first);
    await activated;

    expect(await foldingWith()).toBe(first);
  });

  it('when a version is activated on its own then it is the one folded in against', async () => {
    await vectors.useVersion(second);

    expect(await foldingWith()).toBe(second);
  });
});
