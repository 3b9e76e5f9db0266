import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { databaseNow, forgetRemovedSince } from '../../src/db/erasure.ts';
import { toBytes, toFloat32 } from '../../src/db/models.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { ShopperIds } from '../../src/services/shopper-ids.ts';
import { createEventsQueue, enqueueEvents } from '../../src/workers/queues.ts';
import { startWorkers } from '../../src/workers/runtime.ts';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { findMentions } from '../helpers/privacy-scan.ts';
import { createTestConfig, purchasesOf, tasteGroupPurchases, uniqueId } from '../helpers/test-env.ts';

const ERASE = `mutation($userId: ID!) {
  eraseShopper(userId: $userId) { erasedAt events profiles modelVectors onlineKeys queuedEvents } }`;
const ERASURE = `query($userId: ID!) { erasure(userId: $userId) { erasedAt events } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const RECOMMEND = `query($userId: ID!) { recommendations(userId: $userId, k: 3) { strategy items { item { id } } } }`;
const PROFILE = `query($userId: ID!) { shopper(userId: $userId) { recentItems { id } boughtItemIds } }`;
const WATCH = `subscription($userId: ID!) { recommendationsUpdated(userId: $userId, k: 3) { strategy change { trigger } } }`;
const RETRAIN = `mutation { retrainModel(wait: true, params: { factors: 8, lambda: 10 }) { version { id users } } }`;

interface Watched {
  recommendationsUpdated: { strategy: string; change: { trigger: string } };
}

interface Receipt {
  erasedAt: string;
  events: number;
  profiles: number;
  modelVectors: number;
  onlineKeys: number;
  queuedEvents: number;
}

async function connect(config: Config): Promise<Redis> {
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true });
  await redis.connect();
  return redis;
}

describe('eraseShopper', () => {
  let gateway: RunningGateway;
  let redis: Redis;
  const aItems = Array.from({ length: 6 }, (_, i) => uniqueId(`a${i}`));
  const bItems = Array.from({ length: 6 }, (_, i) => uniqueId(`b${i}`));
  const target = uniqueId('erase-me');

  const settled = () =>
    eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 20_000);

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
    redis = await connect(gateway.config);
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: [...aItems, ...bItems].map((id) => ({ id, name: id })),
    });
    await gateway.graphql(TRACK_MANY, {
      inputs: [
        ...tasteGroupPurchases(3, [
          { label: 'shopper-a', items: aItems, shoppers: 40 },
          { label: 'shopper-b', items: bItems, shoppers: 40 },
        ]),
        ...purchasesOf(target, aItems.slice(0, 4)).map((event) => ({
          ...event,
          sessionId: `${target}-session`,
          recommendationId: `${target}-list`,
          context: { note: target },
        })),
      ],
    });
    await settled();
    await gateway.graphql(RETRAIN);
    // One more event after the training: the worker folds the target in, so Redis holds a vector of theirs too.
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId: target, type: 'VIEW', itemId: aItems[4] }] });
    await settled();
    await eventually(async () => (await redis.exists(`${gateway.config.REDIS_PREFIX}:f:u:${target}:vecs`)) === 1);
  });
  afterAll(async () => {
    redis.disconnect();
    await gateway.stop();
  });

  it('when a known shopper is erased then every store drops them and a scan of every table and key finds nothing', async () => {
    const before = await gateway.graphql<{ recommendations: { strategy: string } }>(RECOMMEND, { userId: target });
    expect(before.data?.recommendations.strategy).toBe('als');
    expect(await findMentions(gateway.config, redis, [target])).not.toEqual([]);
    const watching = subscribe<Watched>(gateway.wsClient(), WATCH, { userId: target });
    expect((await watching.next()).data?.recommendationsUpdated.strategy).toBe('als');

    const erased = await gateway.graphql<{ eraseShopper: Receipt }>(ERASE, { userId: target });
    const pushed = await watching.next();
    await watching.close();

    expect(erased.errors).toBeUndefined();
    expect(erased.data?.eraseShopper).toMatchObject({ events: 5, profiles: 1, modelVectors: 1, queuedEvents: 0 });
    expect(erased.data?.eraseShopper.onlineKeys).toBeGreaterThanOrEqual(5);
    expect(await findMentions(gateway.config, redis, [target])).toEqual([]);
    // The artifact lost exactly one row: ids and factors still line up.
    const artifact = await gateway.app.db.modelArtifact.findFirstOrThrow();
    expect(artifact.userFactors.length).toBe(artifact.userIds.length * artifact.factors * 4);
    // This gateway's loaded model forgot them too: their list is no longer personal.
    const after = await gateway.graphql<{ recommendations: { strategy: string } }>(RECOMMEND, { userId: target });
    expect(after.data?.recommendations.strategy).toBe('trending');
    // Their open list was recomputed at once, non-personal now.
    expect(pushed.data?.recommendationsUpdated).toEqual({ strategy: 'trending', change: { trigger: 'PRIVACY' } });
  });

  it('when an erasure ran then erasure(userId) tells when, and an id never erased answers null', async () => {
    const userId = uniqueId('asked');
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'VIEW', itemId: aItems[0] }] });
    const receipt = await gateway.graphql<{ eraseShopper: Receipt }>(ERASE, { userId });

    const known = await gateway.graphql<{ erasure: { erasedAt: string; events: number } | null }>(ERASURE, { userId });
    const unknown = await gateway.graphql<{ erasure: null }>(ERASURE, { userId: uniqueId('never-erased') });

    expect(known.data?.erasure).toEqual({ erasedAt: receipt.data?.eraseShopper.erasedAt, events: 1 });
    expect(unknown.data?.erasure).toBeNull();
    // The log keeps an HMAC of the id, never the id.
    expect(await findMentions(gateway.config, redis, [userId])).toEqual([]);
  });

  it('when an id the gateway never saw is erased then the receipt counts zeros, not an error', async () => {
    const erased = await gateway.graphql<{ eraseShopper: Receipt }>(ERASE, { userId: uniqueId('stranger') });

    expect(erased.errors).toBeUndefined();
    expect(erased.data?.eraseShopper).toMatchObject({
      events: 0,
      profiles: 0,
      modelVectors: 0,
      onlineKeys: 0,
      queuedEvents: 0,
    });
  });

  it('when the erased id comes back then it starts a new shopper with none of the old history', async () => {
    const userId = uniqueId('returning');
    await gateway.graphql(TRACK_MANY, { inputs: purchasesOf(userId, aItems.slice(0, 3)) });
    await settled();
    await gateway.graphql(ERASE, { userId });

    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'VIEW', itemId: bItems[0] }] });
    await settled();
    const profile = await gateway.graphql<{ shopper: { recentItems: { id: string }[]; boughtItemIds: string[] } }>(
      PROFILE,
      { userId },
    );

    expect(profile.data?.shopper).toEqual({ recentItems: [{ id: bItems[0] }], boughtItemIds: [] });
  });
});

describe('eraseShopper while events are queued', () => {
  let gateway: RunningGateway;
  let config: Config;
  let redis: Redis;

  beforeAll(async () => {
    config = await createTestConfig();
    // No worker yet: tracked events wait in the queue.
    gateway = await startGateway(config, { workers: false });
    redis = await connect(config);
  });
  afterAll(async () => {
    redis.disconnect();
    await gateway.stop();
  });

  it('when the shopper’s events wait in the queue, and one more reaches a worker late, then nothing comes back', async () => {
    const userId = uniqueId('queued');
    const other = uniqueId('bystander');
    const item = uniqueId('item');
    await gateway.graphql(TRACK_MANY, {
      inputs: [
        { userId, type: 'VIEW', itemId: item },
        { userId, type: 'PURCHASE', itemId: item },
        { userId: other, type: 'VIEW', itemId: item },
      ],
    });
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'CLICK', itemId: item }] });

    const erased = await gateway.graphql<{ eraseShopper: Receipt }>(ERASE, { userId });
    // An event stored as the erasure ran, whose job a worker only meets now.
    const queue = createEventsQueue(redis, config.REDIS_PREFIX);
    const lateAt = new Date(Date.parse(erased.data!.eraseShopper.erasedAt) - 1).toISOString();
    await enqueueEvents(queue, {
      eventIds: ['late-event'],
      events: [
        {
          id: '999999',
          eventId: 'late-event',
          userId,
          type: 'VIEW',
          itemId: item,
          category: null,
          occurredAt: lateAt,
          receivedAt: lateAt,
        },
      ],
    });
    const workers = await startWorkers(config, {
      db: gateway.app.db,
      logger: createLogger('silent', 'test'),
      metrics: createMetrics(['worker']),
    });
    try {
      await eventually(async () => {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
        const processed = await gateway.app.db.user.count({ where: { id: other } });
        return Object.values(counts).every((count) => count === 0) && processed === 1;
      }, 20_000);

      expect(erased.data?.eraseShopper).toMatchObject({ events: 3, profiles: 0, queuedEvents: 3 });
      expect(await findMentions(config, redis, [userId])).toEqual([]);
      // The bystander in the same job was applied as usual.
      expect(await redis.exists(`${config.REDIS_PREFIX}:f:u:${other}:recent`)).toBe(1);
    } finally {
      await workers.stop();
      await queue.close();
    }
  });
  it('when a shopper is erased while a training reads the log then the version it stores is cut before it serves', async () => {
    const ids = new ShopperIds(config.USER_ID_KEY);
    const [erasedId, keptId] = [uniqueId('erased-meanwhile'), uniqueId('kept')];
    // The training reads the log, the erasure runs, then the training stores what it read.
    const since = await databaseNow(gateway.app.db);
    await gateway.graphql(ERASE, { userId: erasedId });
    const version = await gateway.app.db.modelVersion.create({ data: { algorithm: 'als', params: {} } });
    await gateway.app.db.modelArtifact.create({
      data: {
        versionId: version.id,
        factors: 2,
        itemIds: [],
        itemFactors: new Uint8Array(0),
        userIds: [erasedId, keptId],
        userFactors: toBytes(new Float32Array([1, 2, 3, 4])),
        itemIndex: new Uint8Array(0),
      },
    });

    const cut = await forgetRemovedSince(gateway.app.db, version.id, since, (userId) => ids.subject(userId));

    const artifact = await gateway.app.db.modelArtifact.findUniqueOrThrow({ where: { versionId: version.id } });
    expect(cut).toBe(1);
    expect(artifact.userIds).toEqual([keptId]);
    expect([...toFloat32(artifact.userFactors)]).toEqual([3, 4]);
  });
});
