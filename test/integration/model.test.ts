import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { createTrainQueue } from '../../src/workers/queues.ts';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { sample, scrape } from '../helpers/prometheus.ts';
import { createTestConfig, purchasesOf, tasteGroupPurchases, uniqueId } from '../helpers/test-env.ts';

// Few factors and strong regularisation suit twelve items in two taste groups.
const RETRAIN = `mutation { retrainModel(wait: true, params: { factors: 8, lambda: 10 }) { jobId version { id status events users items metrics current } } }`;
const RECOMMEND = `query($userId: ID!) { recommendations(userId: $userId, k: 3) { strategy modelVersion items { reason item { id } } } }`;
const SIMILAR = `query($itemId: ID!) { similarItems(itemId: $itemId, k: 11) { score item { id } } }`;

interface Retrained {
  retrainModel: {
    version: { id: number; status: string; events: number; metrics: Record<string, number>; current: boolean };
  };
}
const WATCH = `subscription($userId: ID!) {
  recommendationsUpdated(userId: $userId, k: 3) { strategy modelVersion items { item { id } } } }`;

interface Pushed {
  recommendationsUpdated: { strategy: string; modelVersion: number | null; items: { item: { id: string } }[] };
}
interface ListBody {
  recommendations: { strategy: string; modelVersion: number | null; items: { reason: string; item: { id: string } }[] };
}

describe('learned model (training worker, serving, similar items, rollback)', () => {
  let gateway: RunningGateway;
  // Two tastes: shoppers of group A buy five of the six A items, group B five of the six B items (a seeded
  // draw, so every run sees the same data). B items are more popular overall.
  const aItems = Array.from({ length: 6 }, (_, i) => uniqueId(`a${i}`));
  const bItems = Array.from({ length: 6 }, (_, i) => uniqueId(`b${i}`));
  const newcomerA = uniqueId('newcomer-a');

  beforeAll(async () => {
    // A margin no retraining on the same data can beat: a pinned version stays pinned until the test says.
    gateway = await startGateway(await createTestConfig({ TRAIN_THREADS: '2', MODEL_PIN_MARGIN: '10' }));
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: [...aItems, ...bItems].map((id) => ({ id, name: id })),
    });
    const inputs = [
      ...tasteGroupPurchases(7, [
        { label: 'shopper-a', items: aItems, shoppers: 100 },
        { label: 'shopper-b', items: bItems, shoppers: 200 },
      ]),
      ...purchasesOf(newcomerA, aItems.slice(0, 3)),
    ];
    for (let start = 0; start < inputs.length; start += 500) {
      await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
        inputs: inputs.slice(start, start + 500),
      });
    }
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 20_000);
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when there is no model then lists come from session co-visitation, and trending for a shopper without history', async () => {
    const metricsBefore = await scrape(gateway.url);
    const newcomer = await gateway.graphql<ListBody>(RECOMMEND, { userId: newcomerA });
    const stranger = await gateway.graphql<ListBody>(RECOMMEND, { userId: uniqueId('stranger') });
    const similar = await gateway.graphql<{ similarItems: { item: { id: string } }[] }>(SIMILAR, { itemId: aItems[0] });

    // Shoppers who bought a0..a2 also bought the rest of A in the same sessions.
    expect(newcomer.data?.recommendations).toMatchObject({ strategy: 'co-visited', modelVersion: null });
    expect(newcomer.data?.recommendations.items.map((r) => r.item.id).sort()).toEqual(aItems.slice(3).sort());
    expect(similar.data?.similarItems.map((r) => r.item.id).sort()).toEqual(aItems.slice(1).sort());
    // Trending favours the more popular B items.
    expect(stranger.data?.recommendations.strategy).toBe('trending');
    expect(sample(metricsBefore, 'pgw_model_version_serving')).toBeUndefined();
    expect(bItems).toContain(stranger.data?.recommendations.items[0]?.item.id);
  });

  it('when a retrain runs then a new current version serves lists that follow the shopper’s taste', async () => {
    const retrained = await gateway.graphql<Retrained>(RETRAIN);
    const version = retrained.data!.retrainModel.version;
    const body = await gateway.graphql<ListBody>(RECOMMEND, { userId: newcomerA });
    const similar = await gateway.graphql<{ similarItems: { item: { id: string } }[] }>(SIMILAR, { itemId: aItems[0] });

    expect(retrained.errors).toBeUndefined();
    expect(version).toMatchObject({ status: 'READY', events: 300 * 5 + 3, current: true });
    expect(version.metrics['ndcg@10']).toBeGreaterThan(0);
    expect(body.data?.recommendations).toMatchObject({ strategy: 'als', modelVersion: version.id });
    // The shopper bought a0..a2: the model offers the rest of A, and never what they bought.
    expect(body.data?.recommendations.items.map((r) => r.item.id).sort()).toEqual(aItems.slice(3).sort());
    expect(similar.data?.similarItems.slice(0, 5).every((r) => aItems.includes(r.item.id))).toBe(true);
    expect(similar.data?.similarItems.map((r) => r.item.id)).not.toContain(aItems[0]);
  });

  it('when a version serves then /metrics reports its id and hold-out NDCG@10, and the trainer the training that made it', async () => {
    const versions = await gateway.graphql<{
      modelVersions: { id: number; current: boolean; metrics: Record<string, number> }[];
    }>(`{ modelVersions { id current metrics } }`);
    const current = versions.data?.modelVersions.find((v) => v.current);

    const text = await scrape(gateway.url);
    const trainerText = await gateway.trainerMetrics.registry.metrics();

    expect(sample(text, 'pgw_model_version_serving')).toBe(current?.id);
    expect(sample(text, 'pgw_model_holdout_ndcg10')).toBeCloseTo(current?.metrics['ndcg@10'] ?? Number.NaN, 10);
    expect(sample(trainerText, 'pgw_trainings_total', { outcome: 'succeeded' })).toBeGreaterThanOrEqual(1);
    expect(sample(trainerText, 'pgw_training_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'pgw_trainings_total', { outcome: 'succeeded' })).toBeUndefined();
  });

  it('when a shopper the model has never seen acts then their folded-in vector ranks the next pushed list', async () => {
    const stranger = uniqueId('stranger');
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId: stranger });
    const before = await subscription.next();

    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
      inputs: aItems.slice(0, 3).map((itemId) => ({ userId: stranger, type: 'PURCHASE', itemId })),
    });
    const after = await subscription.next(10_000);

    expect(before.data?.recommendationsUpdated.strategy).toBe('trending');
    expect(after.data?.recommendationsUpdated.strategy).toBe('als');
    expect(after.data?.recommendationsUpdated.items.map((r) => r.item.id).sort()).toEqual(aItems.slice(3).sort());
    await subscription.close();
  });

  it('when a shopper touches an item the model was not trained on then it gets a vector from its co-visited items', async () => {
    const fresh = uniqueId('fresh');
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: [{ id: fresh, name: fresh }],
    });
    // Shoppers of taste A look at the new item in their sessions.
    const views = Array.from({ length: 5 }, () => uniqueId('viewer')).flatMap((userId) =>
      [aItems[0], aItems[1], fresh].map((itemId) => ({ userId, type: 'VIEW', itemId })),
    );
    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
      inputs: views,
    });
    const similar = await eventually(async () => {
      const body = await gateway.graphql<{ similarItems: { reason: string; item: { id: string } }[] }>(
        `query($itemId: ID!) { similarItems(itemId: $itemId, k: 3) { reason item { id } } }`,
        { itemId: fresh },
      );
      return body.data?.similarItems.some((r) => r.reason === 'similar') ? body : undefined;
    }, 10_000);

    const stranger = uniqueId('stranger');
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId: stranger });
    await subscription.next();
    await gateway.graphql(`mutation($input: EventInput!) { trackEvent(input: $input) { status } }`, {
      input: { userId: stranger, type: 'PURCHASE', itemId: fresh },
    });
    const after = await subscription.next(10_000);

    // The index serves the new item's derived vector: its neighbours are the A items.
    expect(similar.data?.similarItems.every((r) => r.reason === 'similar' && aItems.includes(r.item.id))).toBe(true);
    // Having bought only the new item, the shopper is folded in towards taste A.
    expect(after.data?.recommendationsUpdated.strategy).toBe('als');
    expect(after.data?.recommendationsUpdated.items.every((r) => aItems.includes(r.item.id))).toBe(true);
    await subscription.close();
  });

  it('when rolled back then the earlier version serves again and is reported current', async () => {
    const first = (await gateway.graphql<Retrained>(RETRAIN)).data!.retrainModel.version.id;
    const second = (await gateway.graphql<Retrained>(RETRAIN)).data!.retrainModel.version.id;

    const rolled = await gateway.graphql(`mutation($id: Int!) { rollbackModel(versionId: $id) { id current } }`, {
      id: first,
    });
    const body = await gateway.graphql<ListBody>(RECOMMEND, { userId: newcomerA });
    const versions = await gateway.graphql<{ modelVersions: { id: number; current: boolean }[] }>(
      `{ modelVersions { id current } }`,
    );

    expect(second).toBeGreaterThan(first);
    expect(rolled.data).toEqual({ rollbackModel: { id: first, current: true } });
    expect(body.data?.recommendations.modelVersion).toBe(first);
    expect(versions.data?.modelVersions.filter((v) => v.current).map((v) => v.id)).toEqual([first]);
  });

  it('when a rolled-back version is pinned then later trainings are stored but it serves until unpinned or beaten', async () => {
    const pinned = (await gateway.graphql<Retrained>(RETRAIN)).data!.retrainModel.version.id;
    await gateway.graphql(`mutation($id: Int!) { rollbackModel(versionId: $id) { id } }`, { id: pinned });

    const stored = await gateway.graphql<Retrained & { retrainModel: { status: string } }>(
      RETRAIN.replace('jobId', 'jobId status'),
    );
    const whilePinned = await gateway.graphql<ListBody>(RECOMMEND, { userId: newcomerA });
    const unpinned = await gateway.graphql<{ unpinModel: { id: number; pinnedAt: string | null } }>(
      `mutation { unpinModel { id pinnedAt } }`,
    );
    const afterUnpin = (await gateway.graphql<Retrained>(RETRAIN)).data!.retrainModel.version;
    // Pinned again, then made to look weak: a version that beats it by the margin takes over and ends the pin.
    await gateway.graphql(`mutation($id: Int!) { rollbackModel(versionId: $id) { id } }`, { id: pinned });
    await gateway.app.db.modelVersion.update({ where: { id: pinned }, data: { metrics: { 'ndcg@10': 0 } } });
    const beating = (await gateway.graphql<Retrained>(RETRAIN)).data!.retrainModel.version;
    const pins = await gateway.app.db.modelVersion.count({ where: { pinnedAt: { not: null } } });

    expect(stored.data?.retrainModel.status).toBe('TRAINED');
    expect(stored.data?.retrainModel.version).toMatchObject({ status: 'READY', current: false });
    expect(whilePinned.data?.recommendations.modelVersion).toBe(pinned);
    expect(unpinned.data?.unpinModel).toEqual({ id: pinned, pinnedAt: null });
    expect(afterUnpin.current).toBe(true);
    expect(beating.current).toBe(true);
    expect(pins).toBe(0);
  });

  it('when retrainModel waits shorter than the job takes then it answers with the job still queued, and trainingJob tells the outcome later', async () => {
    // Paused, the queue holds the job past the wait, whatever the machine's speed.
    const redis = createRedis(gateway.config.REDIS_URL, 'command');
    await connectRedis(redis, gateway.config.REDIS_URL);
    const queue = createTrainQueue(redis, gateway.config.REDIS_PREFIX);
    await queue.pause();
    const started = await gateway.graphql<{ retrainModel: { jobId: string; status: string; version: unknown } }>(
      `mutation { retrainModel(wait: true, waitSeconds: 1, params: { factors: 8, lambda: 10 }) { jobId status version { id } } }`,
    );
    await queue.resume();
    await queue.close();
    redis.disconnect();
    const jobId = started.data!.retrainModel.jobId;
    const finished = await eventually(async () => {
      const body = await gateway.graphql<{ trainingJob: { status: string; version: { id: number } | null } }>(
        `query($jobId: ID!) { trainingJob(jobId: $jobId) { status version { id } } }`,
        { jobId },
      );
      return body.data?.trainingJob.status === 'TRAINED' ? body.data.trainingJob : undefined;
    }, 30_000);

    expect(started.data?.retrainModel.status).toBe('QUEUED');
    expect(started.data?.retrainModel.version).toBeNull();
    expect(finished.version?.id).toBeGreaterThan(0);
  });

  it('when a version is trained through one gateway then another replica loads it and serves it', async () => {
    const replica = await startGateway(gateway.config, { workers: false });
    try {
      const trained = (await gateway.graphql<Retrained>(RETRAIN)).data!.retrainModel.version.id;

      // The replica learns of it over Redis pub/sub and swaps it in by itself.
      const served = await eventually(async () => {
        const body = await replica.graphql<ListBody>(RECOMMEND, { userId: newcomerA });
        return body.data?.recommendations.modelVersion === trained ? body : undefined;
      });

      expect(served.data?.recommendations.strategy).toBe('als');
    } finally {
      await replica.stop();
    }
  });

  it('when a new version starts serving then open subscriptions get a list from it', async () => {
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId: newcomerA });
    await subscription.next();

    const trained = (await gateway.graphql<Retrained>(RETRAIN)).data!.retrainModel.version.id;
    // Pushes arrive until one comes from the new version; each wait has its own deadline.
    let pushed = await subscription.next(10_000);
    while (pushed.data?.recommendationsUpdated.modelVersion !== trained) pushed = await subscription.next(10_000);

    expect(pushed.data?.recommendationsUpdated.strategy).toBe('als');
    await subscription.close();
  });

  it('when rolling back to a version that does not exist then NOT_FOUND names versionId', async () => {
    const body = await gateway.graphql(`mutation { rollbackModel(versionId: 999999) { id } }`);

    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'versionId' });
  });
});

describe('admin operations', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ ADMIN_TOKEN: 'sesame' }), {
      workers: false,
    });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when ADMIN_TOKEN is set and the request lacks it then retrainModel is FORBIDDEN', async () => {
    const body = await gateway.graphql(`mutation { retrainModel { jobId } }`);

    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
