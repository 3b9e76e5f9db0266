import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HnswIndex } from '../../src/ann/index.ts';
import { completeModelVersion, createModelVersion } from '../../src/db/models.ts';
import { neighbourTableFromRows } from '../../src/model/neighbour-table.ts';
import { PubSub } from '../../src/realtime/pubsub.ts';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const LIST_FIELDS = `strategy modelVersion items {
  item { id } explanation { source anchorItem { id } modelVersion rules { kind } } }`;
const RECOMMEND = `query($userId: ID!, $k: Int, $rules: RulesInput) {
  recommendations(userId: $userId, k: $k, rules: $rules) { ${LIST_FIELDS} } }`;
const WATCH = `subscription($userId: ID!, $k: Int) {
  recommendationsUpdated(userId: $userId, k: $k) { ${LIST_FIELDS} causedBy { eventId } change { trigger entered left } } }`;
const TRACK = `mutation($input: EventInput!) { trackEvent(input: $input) { status } }`;

interface List {
  strategy: string;
  modelVersion: number | null;
  items: {
    item: { id: string };
    explanation: { source: string; anchorItem: { id: string } | null; modelVersion: number | null; rules: unknown[] };
  }[];
}
interface Pushed {
  recommendationsUpdated: List & {
    causedBy: { eventId: string } | null;
    change: { trigger: string; entered: string[]; left: string[] };
  };
}

describe('an item-to-item model version (neighbour table) served in realtime', () => {
  let gateway: RunningGateway;
  let versionId: number;
  let redis: Redis;
  let pubsub: PubSub;
  // Two history items, six neighbours in two categories, four fillers; the table's rows in this order.
  const h = [uniqueId('h0'), uniqueId('h1')];
  const n = Array.from({ length: 6 }, (_, i) => uniqueId(`n${i}`));
  const f = Array.from({ length: 4 }, (_, i) => uniqueId(`f${i}`));
  // A third history item with a long row: 100 neighbours in category z, strongest first.
  const deep = uniqueId('deep');
  const z = Array.from({ length: 100 }, (_, i) => uniqueId(`z${i}`));
  const itemIds = [...h, ...n, ...f, deep, ...z];
  const row = (id: string) => itemIds.indexOf(id);
  // h0 → n0 0.9, n1 0.6, n3 0.3; h1 → n4 0.95, n5 0.7, n0 0.2; no other item has neighbours.
  const neighbours: Record<string, [string, number][]> = {
    [h[0] as string]: [
      [n[0] as string, 0.9],
      [n[1] as string, 0.6],
      [n[3] as string, 0.3],
    ],
    [h[1] as string]: [
      [n[4] as string, 0.95],
      [n[5] as string, 0.7],
      [n[0] as string, 0.2],
    ],
  };
  neighbours[deep] = z.map((id, i): [string, number] => [id, 1 - i / 200]);
  const category = (id: string) => (z.includes(id) ? 'z' : n.slice(3).includes(id) || id === f[3] ? 'y' : 'x');

  const viewAndWait = async (userId: string, itemId: string) => {
    const eventId = uniqueId('evt');
    await gateway.graphql(TRACK, { input: { eventId, userId, type: 'VIEW', itemId } });
    await eventually(async () => (await gateway.app.db.event.findUnique({ where: { eventId } }))?.processedAt);
    return eventId;
  };
  const ids = (list: List | undefined) => list?.items.map((r) => r.item.id);

  /** Stores a READY item-to-item version serving the table above, with `params` as training would store them. */
  const storeTableVersion = async (params: { lambda: number; historyHalfLifeDays?: number }) => {
    const table = neighbourTableFromRows(itemIds.length, 100, (i, out) => {
      for (const [to, weight] of neighbours[itemIds[i] as string] ?? []) out[row(to)] = weight;
    });
    // The version keeps ALS-style item vectors and their index too (similar items, cold items).
    const factors = 4;
    const itemFactors = Float32Array.from({ length: itemIds.length * factors }, (_, i) => Math.sin(i + 1));
    const index = HnswIndex.build({ space: 'ip', dim: factors, ids: itemIds, vectors: itemFactors });
    const version = await createModelVersion(gateway.app.db, 'ease', params);
    await completeModelVersion(
      gateway.app.db,
      version.id,
      { events: 0, users: 0, items: itemIds.length },
      {
        factors,
        itemIds,
        itemFactors,
        userIds: [],
        userFactors: new Float32Array(0),
        itemIndex: await index.serialize(),
        neighbours: table,
      },
      true,
    );
    return version.id;
  };
  const activate = async (id: number) => {
    await pubsub.publishModelActivated({ versionId: id });
    await eventually(async () => gateway.app.services.models.currentVersionId === id);
  };

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: itemIds.map((id) => ({ id, name: id, category: category(id) })),
    });
    versionId = await storeTableVersion({ lambda: 100 });
    // As the trainer announces it: the gateway and its in-process worker both follow.
    redis = createRedis(gateway.config.REDIS_URL, 'command');
    const subscriber = createRedis(gateway.config.REDIS_URL, 'subscriber');
    await connectRedis(redis, gateway.config.REDIS_URL);
    pubsub = new PubSub({ publisher: redis, subscriber, prefix: gateway.config.REDIS_PREFIX });
    await activate(versionId);
    subscriber.disconnect();
  });
  afterAll(async () => {
    redis.disconnect();
    await gateway.stop();
  });

  it('when a shopper views an item then their list is its neighbours in table order, anchored on it', async () => {
    const userId = uniqueId('shopper');
    await viewAndWait(userId, h[0] as string);

    const body = await gateway.graphql<{ recommendations: List }>(RECOMMEND, { userId, k: 3 });

    expect(body.errors).toBeUndefined();
    const list = body.data?.recommendations;
    expect(list).toMatchObject({ strategy: 'item-to-item', modelVersion: versionId });
    expect(ids(list)).toEqual([n[0], n[1], n[3]]);
    for (const { explanation } of list?.items ?? []) {
      expect(explanation).toMatchObject({ source: 'LEARNED', anchorItem: { id: h[0] }, modelVersion: versionId });
    }
    // The worker folds in no vector for a version that serves from its table.
    expect(await redis.exists(`${gateway.config.REDIS_PREFIX}:f:u:${userId}:vecs`)).toBe(0);
    expect(await redis.exists(`${gateway.config.REDIS_PREFIX}:f:u:${userId}:weights`)).toBe(1);
  });

  it('when the shopper views another item then the open subscription gets the list both rows make, at once', async () => {
    const userId = uniqueId('shopper');
    await viewAndWait(userId, h[0] as string);
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId, k: 3 });
    const first = await subscription.next();

    const eventId = uniqueId('evt');
    await gateway.graphql(TRACK, { input: { eventId, userId, type: 'VIEW', itemId: h[1] } });
    const pushed = await subscription.next(5000);

    expect(ids(first.data?.recommendationsUpdated)).toEqual([n[0], n[1], n[3]]);
    const list = pushed.data?.recommendationsUpdated;
    expect(list?.causedBy?.eventId).toBe(eventId);
    // n0 = 0.9 (h0) + 0.2 (h1), then n4 0.95 and n5 0.7 from h1: each anchored on its larger contribution.
    expect(ids(list)).toEqual([n[0], n[4], n[5]]);
    expect(list?.items.map((r) => r.explanation.anchorItem?.id)).toEqual([h[0], h[1], h[1]]);
    expect(list?.change).toMatchObject({ trigger: 'EVENT', left: [n[1], n[3]].sort() });
    expect(list?.change.entered.sort()).toEqual([n[4], n[5]].sort());
    await subscription.close();
  });

  it('when a request has rules then the table’s candidates pass its filter and pins keep their positions', async () => {
    const userId = uniqueId('shopper');
    await viewAndWait(userId, h[0] as string);
    await viewAndWait(userId, h[1] as string);

    const body = await gateway.graphql<{ recommendations: List }>(RECOMMEND, {
      userId,
      k: 3,
      rules: { filter: { categories: ['y'] }, pins: [{ itemId: f[3], position: 1 }] },
    });
    const excluding = await gateway.graphql<{ recommendations: List }>(RECOMMEND, {
      userId,
      k: 3,
      rules: { filter: { excludeItemIds: [n[0]] } },
    });

    expect(body.errors).toBeUndefined();
    // Of the y items the history reaches: n4 0.95, n5 0.7, n3 0.3; the pin takes the first place.
    expect(ids(body.data?.recommendations)).toEqual([f[3], n[4], n[5]]);
    expect(body.data?.recommendations.items[0]?.explanation).toMatchObject({ source: 'PINNED' });
    expect(ids(excluding.data?.recommendations)).toEqual([n[4], n[5], n[1]]);
  });

  it('when the filter refuses the best hundred-odd candidates then the source ranks deeper and finds the next', async () => {
    const userId = uniqueId('shopper');
    await viewAndWait(userId, deep);

    const body = await gateway.graphql<{ recommendations: List }>(RECOMMEND, {
      userId,
      k: 3,
      rules: { filter: { categories: ['z'], excludeItemIds: z.slice(0, 90) } },
    });

    expect(body.errors).toBeUndefined();
    expect(ids(body.data?.recommendations)).toEqual(z.slice(90, 93));
    expect(body.data?.recommendations.items.every((r) => r.explanation.anchorItem?.id === deep)).toBe(true);
  });

  it('when a shopper bought a neighbour then it is not offered, and the next one moves up', async () => {
    const userId = uniqueId('shopper');
    await viewAndWait(userId, h[0] as string);
    const eventId = uniqueId('evt');
    await gateway.graphql(TRACK, { input: { eventId, userId, type: 'PURCHASE', itemId: n[0] } });
    await eventually(async () => (await gateway.app.db.event.findUnique({ where: { eventId } }))?.processedAt);

    const body = await gateway.graphql<{ recommendations: List }>(RECOMMEND, { userId, k: 2 });

    expect(ids(body.data?.recommendations)).toEqual([n[1], n[3]]);
  });

  it('when a shopper has no history then the list falls back to the other sources', async () => {
    const body = await gateway.graphql<{ recommendations: List }>(RECOMMEND, { userId: uniqueId('stranger'), k: 3 });

    expect(body.errors).toBeUndefined();
    expect(body.data?.recommendations.items).toHaveLength(3);
    expect(body.data?.recommendations.items.every((r) => r.explanation.source !== 'LEARNED')).toBe(true);
  });

  it('when the version weighs history by recency then an item viewed long ago counts for less than one viewed now', async () => {
    const userId = uniqueId('shopper');
    const view = async (itemId: string, daysAgo: number) => {
      const eventId = uniqueId('evt');
      const occurredAt = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
      await gateway.graphql(TRACK, { input: { eventId, userId, type: 'VIEW', itemId, occurredAt } });
      await eventually(async () => (await gateway.app.db.event.findUnique({ where: { eventId } }))?.processedAt);
    };
    const list = async () =>
      ids((await gateway.graphql<{ recommendations: List }>(RECOMMEND, { userId, k: 3 })).data?.recommendations);
    await view(h[0] as string, 60);
    await view(h[1] as string, 0);
    const uniform = await list();

    // The same table, read as a selection that chose a 7-day half-life stores it: h0 then weighs 0.5^(60/7).
    const recent = await storeTableVersion({ lambda: 100, historyHalfLifeDays: 7 });
    await activate(recent);
    const weighted = await list();
    await activate(versionId);

    // n0 = 0.9 (h0) + 0.2 (h1) leads while both weigh the same; with h0 sixty days old, h1's row leads.
    expect(uniform).toEqual([n[0], n[4], n[5]]);
    expect(weighted).toEqual([n[4], n[5], n[0]]);
  });
});
