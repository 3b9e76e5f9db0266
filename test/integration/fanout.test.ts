import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { createTestConfig, purchasesOf, tasteGroupPurchases, uniqueId } from '../helpers/test-env.ts';

const WATCH = `subscription($userId: ID!, $k: Int) {
  recommendationsUpdated(userId: $userId, k: $k) {
    strategy items { item { id price } } causedBy { eventId } change { trigger entered left }
  }
}`;
const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;
const TRACK = `mutation($input: EventInput!) { trackEvent(input: $input) { status } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const RETRAIN = `mutation { retrainModel(wait: true, params: { factors: 8, lambda: 10 }) { version { id } } }`;

interface Pushed {
  recommendationsUpdated: {
    strategy: string;
    items: { item: { id: string; price: string | null } }[];
    causedBy: { eventId: string } | null;
    change: { trigger: string; entered: string[]; left: string[] };
  };
}

const idsOf = (pushed: { data?: Pushed | null }) => pushed.data?.recommendationsUpdated.items.map((r) => r.item.id);

/** Every shopper's events are applied (features, pushes) before the test goes on. */
async function allProcessed(gateway: RunningGateway): Promise<void> {
  await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 20_000);
}

describe('catalogue fan-out', () => {
  let gateway: RunningGateway;
  const [shown, other1, other2, other3] = [uniqueId('p'), uniqueId('q'), uniqueId('r'), uniqueId('s')];

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
    await gateway.graphql(UPSERT, { items: [shown, other1, other2, other3].map((id) => ({ id, name: id })) });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  /** A shopper who bought `shown`, so it is not on their list (the rest of the catalogue is). */
  async function buyerOfShown(): Promise<string> {
    const userId = uniqueId('buyer');
    await gateway.graphql(TRACK, { input: { userId, type: 'PURCHASE', itemId: shown } });
    return userId;
  }

  it('when the price of an item shown on one list changes then only that list is recomputed and pushed', async () => {
    const buyers = [await buyerOfShown(), await buyerOfShown(), await buyerOfShown()];
    await allProcessed(gateway);
    const client = gateway.wsClient();
    const showing = subscribe<Pushed>(client, WATCH, { userId: uniqueId('shopper'), k: 3 });
    const others = buyers.map((userId) => subscribe<Pushed>(client, WATCH, { userId, k: 3 }));
    const first = await showing.next();
    const othersFirst = await Promise.all(others.map((s) => s.next()));
    const before = gateway.app.services.recommendations.fanout;
    const echoesBefore = gateway.app.services.catalog.ownAnnouncementsSkipped;

    await gateway.graphql(UPSERT, { items: [{ id: shown, name: shown, price: 9.99 }] });
    const pushed = await showing.next();
    // The gateway's own announcement has come back and been skipped: nothing more can be on its way.
    await eventually(async () => gateway.app.services.catalog.ownAnnouncementsSkipped > echoesBefore);
    const after = gateway.app.services.recommendations.fanout;

    expect(idsOf(first)).toContain(shown);
    for (const list of othersFirst) expect(idsOf(list)).not.toContain(shown);
    expect(pushed.data?.recommendationsUpdated.change).toEqual({ trigger: 'CATALOG', entered: [], left: [] });
    expect(pushed.data?.recommendationsUpdated.items.find((r) => r.item.id === shown)?.item.price).toBe('9.99');
    expect(after.recomputes.CATALOG - before.recomputes.CATALOG).toBe(1);
    expect(after.pushes.CATALOG - before.pushes.CATALOG).toBe(1);
    await Promise.all([showing, ...others].map((s) => s.close()));
  });

  it('when the catalogue changes through this gateway then it recomputes once and a second replica refreshes and pushes', async () => {
    const replica = await startGateway(gateway.config, { workers: false });
    try {
      const here = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId: uniqueId('shopper'), k: 3 });
      const there = subscribe<Pushed>(replica.wsClient(), WATCH, { userId: uniqueId('shopper'), k: 3 });
      await Promise.all([here.next(), there.next()]);
      const before = gateway.app.services.recommendations.fanout;
      const replicaBefore = replica.app.services.recommendations.fanout;
      const echoesBefore = gateway.app.services.catalog.ownAnnouncementsSkipped;

      await gateway.graphql(UPSERT, { items: [{ id: shown, name: shown, price: 11 }] });
      const [pushedHere, pushedThere] = await Promise.all([here.next(), there.next()]);
      await eventually(async () => gateway.app.services.catalog.ownAnnouncementsSkipped > echoesBefore);

      for (const pushed of [pushedHere, pushedThere]) {
        expect(pushed.data?.recommendationsUpdated.change.trigger).toBe('CATALOG');
        expect(pushed.data?.recommendationsUpdated.items.find((r) => r.item.id === shown)?.item.price).toBe('11.00');
      }
      // Once from the local change, not again from the echo.
      expect(gateway.app.services.recommendations.fanout.recomputes.CATALOG - before.recomputes.CATALOG).toBe(1);
      expect(replica.app.services.recommendations.fanout.recomputes.CATALOG - replicaBefore.recomputes.CATALOG).toBe(1);
      expect(replica.app.services.catalog.get(shown)?.price?.toFixed(2)).toBe('11.00');
      await Promise.all([here.close(), there.close()]);
    } finally {
      await replica.stop();
    }
  });
});

describe('model-aware fan-out', () => {
  const CONCURRENCY = 2;
  let gateway: RunningGateway;
  // Two tastes, as in model.test.ts: group A shoppers buy five of six A items, group B five of six B items.
  const aItems = Array.from({ length: 6 }, (_, i) => uniqueId(`a${i}`));
  const bItems = Array.from({ length: 6 }, (_, i) => uniqueId(`b${i}`));
  const shopperA = uniqueId('shopper-a');
  const shopperB = uniqueId('shopper-b');

  beforeAll(async () => {
    gateway = await startGateway(
      await createTestConfig({
        TRAIN_THREADS: '2',
        FANOUT_CONCURRENCY: String(CONCURRENCY),
        MAX_SUBSCRIPTIONS_PER_CONNECTION: '400',
      }),
    );
    await gateway.graphql(UPSERT, { items: [...aItems, ...bItems].map((id) => ({ id, name: id })) });
    const inputs = [
      ...tasteGroupPurchases(11, [
        { label: 'group-a', items: aItems, shoppers: 80 },
        { label: 'group-b', items: bItems, shoppers: 80 },
      ]),
      ...purchasesOf(shopperA, aItems.slice(0, 3)),
      ...purchasesOf(shopperB, bItems.slice(0, 3)),
    ];
    for (let start = 0; start < inputs.length; start += 500) {
      await gateway.graphql(TRACK_MANY, { inputs: inputs.slice(start, start + 500) });
    }
    await allProcessed(gateway);
    const trained = await gateway.graphql(RETRAIN);
    expect(trained.errors).toBeUndefined();
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when an item the model ranks high for a shopper comes back in stock then it enters their list, and a list it cannot enter is not recomputed', async () => {
    const restocked = aItems[5] as string;
    await gateway.graphql(UPSERT, { items: [{ id: restocked, name: restocked, inStock: false }] });
    const client = gateway.wsClient();
    const tasteA = subscribe<Pushed>(client, WATCH, { userId: shopperA, k: 3 });
    const tasteB = subscribe<Pushed>(client, WATCH, { userId: shopperB, k: 3 });
    const [firstA, firstB] = [await tasteA.next(), await tasteB.next()];
    const before = gateway.app.services.recommendations.fanout;

    await gateway.graphql(UPSERT, { items: [{ id: restocked, name: restocked, inStock: true }] });
    const pushed = await tasteA.next();
    // Every list was matched against the change in one pass before the first recomputation started.
    const after = gateway.app.services.recommendations.fanout;

    expect(firstA.data?.recommendationsUpdated.strategy).toBe('als');
    expect(firstB.data?.recommendationsUpdated).toMatchObject({ strategy: 'als' });
    expect(idsOf(firstB)?.sort()).toEqual(bItems.slice(3).sort());
    expect(pushed.data?.recommendationsUpdated.change).toMatchObject({ trigger: 'CATALOG', entered: [restocked] });
    expect(idsOf(pushed)?.sort()).toEqual(aItems.slice(3).sort());
    expect(after.recomputes.CATALOG - before.recomputes.CATALOG).toBe(1);
    await Promise.all([tasteA.close(), tasteB.close()]);
  });

  it('when a model version activates under many subscriptions then all are recomputed a few at a time and a shopper’s event is pushed meanwhile', async () => {
    const lists = 300;
    const client = gateway.wsClient();
    const watched = Array.from({ length: lists }, (_, i) =>
      subscribe<Pushed>(client, WATCH, { userId: i % 2 ? uniqueId('shopper') : shopperA, k: 3 }),
    );
    await Promise.all(watched.map((s) => s.next()));
    const actor = uniqueId('actor');
    const acting = subscribe<Pushed>(client, WATCH, { userId: actor, k: 3 });
    const actorList = idsOf(await acting.next()) ?? [];
    const before = gateway.app.services.recommendations.fanout;
    const eventId = uniqueId('evt');

    await gateway.graphql(RETRAIN);
    const startedAt = Date.now();
    await gateway.graphql(TRACK, { input: { eventId, userId: actor, type: 'PURCHASE', itemId: actorList[0] } });
    // The actor's list may get the model's push first; their event's push must follow within the deadline.
    let pushed = await acting.next(3000);
    while (pushed.data?.recommendationsUpdated.causedBy?.eventId !== eventId) pushed = await acting.next(3000);
    const eventLatency = Date.now() - startedAt;
    const duringEvent = gateway.app.services.recommendations.fanout;
    // The actor's own model recomputation folds into their event's when the event arrives while it waits, so
    // the watched lists are the ones certain to be recomputed for the model.
    const after = await eventually(async () => {
      const stats = gateway.app.services.recommendations.fanout;
      const settled = stats.waiting === 0 && stats.inFlight === 0;
      return stats.recomputes.MODEL - before.recomputes.MODEL >= lists && settled ? stats : undefined;
      // A busy test process keeps the pacer at FANOUT_MIN_RATE (25/s): 300 lists then take 12 s.
    }, 30_000);

    expect(pushed.data?.recommendationsUpdated.change.trigger).toBe('EVENT');
    expect(eventLatency).toBeLessThan(3000);
    // The event's list went out while model recomputations were still waiting: it did not queue behind them.
    expect(duringEvent.waiting).toBeGreaterThan(0);
    expect(after.maxInFlight).toBe(CONCURRENCY);
    await Promise.all([...watched, acting].map((s) => s.close()));
  }, 60_000);
});

describe('fan-out lanes', () => {
  let gateway: RunningGateway;
  const shown = uniqueId('shown');
  const buyers = Array.from({ length: 200 }, () => uniqueId('buyer'));

  beforeAll(async () => {
    // A model fan-out this slow cannot end within the test: it stands for one held at the floor by a busy gateway.
    gateway = await startGateway(
      await createTestConfig({ FANOUT_RATE: '4', FANOUT_MIN_RATE: '1', MAX_SUBSCRIPTIONS_PER_CONNECTION: '400' }),
    );
    const others = Array.from({ length: 6 }, (_, i) => uniqueId(`o${i}`));
    await gateway.graphql(UPSERT, { items: [shown, ...others].map((id) => ({ id, name: id })) });
    // Every buyer has bought `shown`, so it is on no list of theirs; it tops trending for everyone else.
    await gateway.graphql(TRACK_MANY, {
      inputs: buyers.flatMap((userId, i) => purchasesOf(userId, [shown, others[i % others.length] as string])),
    });
    await allProcessed(gateway);
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a catalogue change touches a list still waiting for a model fan-out then it is pushed at once', async () => {
    const client = gateway.wsClient();
    const bulk = buyers.map((userId) => subscribe<Pushed>(client, WATCH, { userId, k: 3 }));
    await Promise.all(bulk.map((s) => s.next()));
    const showing = subscribe<Pushed>(client, WATCH, { userId: uniqueId('shopper'), k: 3 });
    const first = await showing.next();

    const trained = await gateway.graphql(RETRAIN);
    const waitingBefore = gateway.app.services.recommendations.fanout.waiting;
    await gateway.graphql(UPSERT, { items: [{ id: shown, name: shown, price: 9.99 }] });
    // Subscribed last, this list is last in the model fan-out: at 4 lists a second it would wait 50 s.
    const pushed = await showing.next(5000);
    const waitingAfter = gateway.app.services.recommendations.fanout.waiting;

    expect(trained.errors).toBeUndefined();
    expect(idsOf(first)).toContain(shown);
    expect(waitingBefore).toBeGreaterThan(150);
    expect(pushed.data?.recommendationsUpdated.change.trigger).toBe('CATALOG');
    expect(pushed.data?.recommendationsUpdated.items.find((r) => r.item.id === shown)?.item.price).toBe('9.99');
    // The model fan-out goes on at its own pace behind it.
    expect(waitingAfter).toBeGreaterThan(100);
    await Promise.all([...bulk, showing].map((s) => s.close()));
  });
});
