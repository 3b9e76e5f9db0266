import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted items { id name price inStock } } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const RECOMMEND = `query($userId: ID!, $k: Int) {
  recommendations(userId: $userId, k: $k) { recommendationId userId strategy generatedAt items { score reason item { id name } } }
}`;

const TRENDING = `query($k: Int) { trending(k: $k) { score item { id name price } } }`;

interface TrendingBody {
  trending: { score: number; item: { id: string; name: string; price: string | null } }[];
}

interface ListBody {
  recommendations: { recommendationId: string; items: { score: number; reason: string; item: { id: string } }[] };
}

describe('recommendations (trending)', () => {
  let gateway: RunningGateway;
  const ids = { hot: uniqueId('hot'), warm: uniqueId('warm'), cool: uniqueId('cool'), soldOut: uniqueId('sold-out') };
  const shopper = uniqueId('shopper');

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
    await gateway.graphql(UPSERT, {
      items: [
        { id: ids.hot, name: 'Hot mug', price: 4.5, currency: 'EUR', category: 'kitchen' },
        { id: ids.warm, name: 'Warm scarf', price: 19.99, currency: 'EUR' },
        { id: ids.cool, name: 'Cool lamp', price: 30, currency: 'EUR' },
        { id: ids.soldOut, name: 'Sold-out vase', price: 12, currency: 'EUR', inStock: false },
      ],
    });
    const crowd = (itemId: string, times: number, type = 'PURCHASE') =>
      Array.from({ length: times }, () => ({ userId: uniqueId('crowd'), type, itemId }));
    await gateway.graphql(TRACK_MANY, {
      inputs: [...crowd(ids.soldOut, 9), ...crowd(ids.hot, 5), ...crowd(ids.warm, 3), ...crowd(ids.cool, 1, 'VIEW')],
    });
    // The shopper bought the hot mug, so it must not be offered to them again.
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId: shopper, type: 'PURCHASE', itemId: ids.hot }] });
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0);
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when items trend then they rank by decayed popularity, in stock only, without what the shopper bought', async () => {
    const body = await gateway.graphql<ListBody>(RECOMMEND, { userId: shopper, k: 3 });

    expect(body.errors).toBeUndefined();
    const items = body.data!.recommendations.items;
    expect(items.map((r) => r.item.id)).toEqual([ids.warm, ids.cool]);
    expect(items[0]!.score).toBeGreaterThan(items[1]!.score);
    expect(items.every((r) => r.reason === 'trending')).toBe(true);
  });

  it('when another shopper asks then the most popular in-stock items lead, scored relative to the top trend', async () => {
    const body = await gateway.graphql<ListBody>(RECOMMEND, { userId: uniqueId('newcomer'), k: 2 });

    const items = body.data!.recommendations.items;
    expect(items.map((r) => r.item.id)).toEqual([ids.hot, ids.warm]);
    // The sold-out vase trends most, so even the mug scores below 1.
    expect(items[0]!.score).toBeLessThan(1);
    expect(items[0]!.score).toBeGreaterThan(items[1]!.score);
  });

  it('when the shop-wide trending items are asked then the in-stock ones come best first with their items', async () => {
    const body = await gateway.graphql<TrendingBody>(TRENDING, { k: 3 });

    expect(body.errors).toBeUndefined();
    const trending = body.data!.trending;
    expect(trending.map((t) => t.item.id)).toEqual([ids.hot, ids.warm, ids.cool]);
    expect(trending[0]).toMatchObject({ item: { name: 'Hot mug', price: '4.50' } });
    // Scores stay relative to the sold-out vase, the top trend overall.
    expect(trending[0]!.score).toBeLessThan(1);
    expect(trending[0]!.score).toBeGreaterThan(trending[1]!.score);
  });

  it('when k is out of range then INVALID_INPUT names k', async () => {
    for (const k of [0, 101]) {
      const list = await gateway.graphql(RECOMMEND, { userId: shopper, k });
      const trending = await gateway.graphql(TRENDING, { k });

      for (const body of [list, trending]) {
        expect(body.errors).toEqual([
          expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field: 'k', rule: 'range' } }),
        ]);
      }
    }
  });

  it('when asked over plain HTTP then it answers the storefront JSON shape', async () => {
    const response = await fetch(`${gateway.url}/api/recommendations?user_id=${shopper}&k=1`);

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      user_id: shopper,
      recommendations: [{ product_id: ids.warm, score: expect.any(Number), name: 'Warm scarf', price: '19.99' }],
    });
  });

  it('when the plain endpoint gets a bad k or no user then it answers 400 naming the parameter', async () => {
    const badK = await fetch(`${gateway.url}/api/recommendations?user_id=${shopper}&k=abc`);
    const noUser = await fetch(`${gateway.url}/api/recommendations?k=3`);

    expect(badK.status).toBe(400);
    expect(await badK.json()).toMatchObject({ error: { code: 'INVALID_INPUT', field: 'k' } });
    expect(noUser.status).toBe(400);
    expect(await noUser.json()).toMatchObject({ error: { code: 'INVALID_INPUT', field: 'user_id' } });
  });

  it('when an item goes out of stock then it leaves the lists', async () => {
    const item = uniqueId('briefly');
    await gateway.graphql(UPSERT, { items: [{ id: item, name: 'Briefly stocked' }] });
    await gateway.graphql(TRACK_MANY, {
      inputs: Array.from({ length: 20 }, () => ({ userId: uniqueId('crowd'), type: 'PURCHASE', itemId: item })),
    });
    await eventually(async () => {
      const body = await gateway.graphql<ListBody>(RECOMMEND, { userId: shopper, k: 1 });
      return body.data?.recommendations.items[0]?.item.id === item;
    });

    await gateway.graphql(UPSERT, { items: [{ id: item, name: 'Briefly stocked', inStock: false }] });

    const body = await gateway.graphql<ListBody>(RECOMMEND, { userId: shopper, k: 5 });
    expect(body.data!.recommendations.items.map((r) => r.item.id)).not.toContain(item);
  });
});

describe('catalogue', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ MAX_BATCH_SIZE: '3' }), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when items are upserted then item() and items() return them, paginated by cursor', async () => {
    const category = uniqueId('cat');
    const [a, b, c] = ['a', 'b', 'c'].map((suffix) => `${category}-${suffix}`);

    const upsert = await gateway.graphql(UPSERT, {
      items: [a, b, c].map((id, index) => ({
        id,
        name: `Item ${index}`,
        category,
        price: 1.25 + index,
        currency: 'GBP',
      })),
    });
    const one = await gateway.graphql(
      `query($id: ID!) { item(id: $id) { id name category price currency inStock attributes } }`,
      { id: b },
    );
    const page = (after?: string) =>
      gateway.graphql<{
        items: { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } };
      }>(
        `query($after: String, $category: String) { items(first: 2, after: $after, category: $category) {
           edges { node { id } } pageInfo { hasNextPage endCursor } } }`,
        { after, category },
      );
    const first = await page();
    const second = await page(first.data!.items.pageInfo.endCursor);

    expect(upsert.data).toMatchObject({ upsertItems: { upserted: 3 } });
    expect(one.data).toEqual({
      item: { id: b, name: 'Item 1', category, price: '2.25', currency: 'GBP', inStock: true, attributes: {} },
    });
    expect(first.data!.items.edges.map((e) => e.node.id)).toEqual([a, b]);
    expect(first.data!.items.pageInfo.hasNextPage).toBe(true);
    expect(second.data!.items.edges.map((e) => e.node.id)).toEqual([c]);
    expect(second.data!.items.pageInfo.hasNextPage).toBe(false);
  });

  it('when an update leaves fields out then they keep their stored values', async () => {
    const id = uniqueId('sku');
    await gateway.graphql(UPSERT, {
      items: [{ id, name: 'Lamp', price: 30, currency: 'EUR', attributes: { colour: 'red' } }],
    });

    await gateway.graphql(UPSERT, { items: [{ id, name: 'Lamp', inStock: false }] });

    const body = await gateway.graphql(`query($id: ID!) { item(id: $id) { price currency inStock attributes } }`, {
      id,
    });
    expect(body.data).toEqual({
      item: { price: '30.00', currency: 'EUR', inStock: false, attributes: { colour: 'red' } },
    });
  });

  it('when an item input breaks a rule then INVALID_INPUT names it and nothing of the batch is stored', async () => {
    const good = uniqueId('sku');
    const cases = [
      { item: { id: uniqueId('sku'), name: 'X', currency: 'euro' }, field: 'items[1].currency', rule: 'format' },
      { item: { id: uniqueId('sku'), name: 'X', price: -1 }, field: 'items[1].price', rule: 'range' },
      { item: { id: uniqueId('sku'), name: 'X', imageUrl: 'not a url' }, field: 'items[1].imageUrl', rule: 'format' },
      { item: { id: good, name: 'X' }, field: 'items[1].id', rule: 'unique' },
    ];
    for (const { item, field, rule } of cases) {
      const body = await gateway.graphql(UPSERT, { items: [{ id: good, name: 'Fine' }, item] });

      expect(body.errors).toEqual([expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field, rule } })]);
    }
    expect(await gateway.app.db.item.count({ where: { id: good } })).toBe(0);
  });

  it('when more items than the limit are sent then the call is refused', async () => {
    const items = Array.from({ length: 4 }, () => ({ id: uniqueId('sku'), name: 'X' }));

    const body = await gateway.graphql(UPSERT, { items });

    expect(body.errors).toEqual([
      expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field: 'items', rule: 'maxItems' } }),
    ]);
  });
});

describe('shopper profile (online features)', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a shopper acts then recent items, bought items and category affinity follow their events', async () => {
    const [mug, pan, spade] = [uniqueId('mug'), uniqueId('pan'), uniqueId('spade')];
    await gateway.graphql(UPSERT, {
      items: [
        { id: mug, name: 'Mug', category: 'kitchen' },
        { id: pan, name: 'Pan', category: 'kitchen' },
        { id: spade, name: 'Spade', category: 'garden' },
      ],
    });
    const userId = uniqueId('shopper');
    const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 12, minute)).toISOString();

    await gateway.graphql(TRACK_MANY, {
      inputs: [
        { userId, type: 'VIEW', itemId: mug, occurredAt: at(1) },
        { userId, type: 'CLICK', itemId: pan, occurredAt: at(2) },
        { userId, type: 'PURCHASE', itemId: spade, occurredAt: at(3) },
        { userId, type: 'VIEW', itemId: mug, occurredAt: at(4) },
      ],
    });
    await eventually(async () => (await gateway.app.db.event.count({ where: { userId, processedAt: null } })) === 0);
    const body = await gateway.graphql(
      `query($userId: ID!) { shopper(userId: $userId) {
         id recentItems { id } boughtItemIds categoryAffinity { category weight } } }`,
      { userId },
    );

    expect(body.data).toEqual({
      shopper: {
        id: userId,
        recentItems: [{ id: mug }, { id: spade }, { id: pan }],
        boughtItemIds: [spade],
        categoryAffinity: [
          { category: 'garden', weight: 8 },
          { category: 'kitchen', weight: 4 },
        ],
      },
    });
  });
});
