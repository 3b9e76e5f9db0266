import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, purchasesOf, tasteGroupPurchases, uniqueId } from '../helpers/test-env.ts';

const RETRAIN = `mutation { retrainModel(wait: true, params: { factors: 8, lambda: 10 }) { version { id current } } }`;
const SIMILAR = `query($itemId: ID!) { similarItems(itemId: $itemId, k: 5) { item { id } explanation { source } } }`;
const RECOMMEND = `query($userId: ID!) { recommendations(userId: $userId, k: 5) { strategy items { item { id } explanation { source } } } }`;
const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;

interface Similar {
  similarItems: { item: { id: string }; explanation: { source: string } }[];
}
interface ListBody {
  recommendations: { strategy: string; items: { item: { id: string }; explanation: { source: string } }[] };
}

describe('cold items (content vectors before the first event)', () => {
  let gateway: RunningGateway;
  // Two tastes with words of their own: cherry-blossom lanterns and oak star ornaments.
  const aItems = Array.from({ length: 6 }, (_, i) => uniqueId(`lantern${i}`));
  const bItems = Array.from({ length: 6 }, (_, i) => uniqueId(`ornament${i}`));
  const newcomer = uniqueId('newcomer-a');
  const colours = ['pink', 'white', 'red', 'peach', 'ivory', 'rose'];

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ TRAIN_THREADS: '2' }));
    await gateway.graphql(UPSERT, {
      items: [
        ...aItems.map((id, i) => ({
          id,
          name: `${colours[i]} cherry blossom lantern`,
          description: 'paper lantern with cherry blossom print',
          category: 'lights',
        })),
        ...bItems.map((id, i) => ({
          id,
          name: `${colours[i]} wooden star ornament`,
          description: 'oak christmas decoration',
          category: 'decor',
        })),
      ],
    });
    const inputs = [
      ...tasteGroupPurchases(11, [
        { label: 'shopper-a', items: aItems, shoppers: 100 },
        { label: 'shopper-b', items: bItems, shoppers: 200 },
      ]),
      ...purchasesOf(newcomer, aItems.slice(0, 3)),
    ];
    for (let start = 0; start < inputs.length; start += 500) {
      await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
        inputs: inputs.slice(start, start + 500),
      });
    }
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 20_000);
    const retrained = await gateway.graphql<{ retrainModel: { version: { current: boolean } } }>(RETRAIN);
    expect(retrained.data?.retrainModel.version.current).toBe(true);
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a new item is added that nobody has touched then it has similar items from its content', async () => {
    const cold = uniqueId('cold-lantern');

    await gateway.graphql(UPSERT, {
      items: [
        { id: cold, name: 'cherry blossom garland', description: 'paper garland, cherry blossom', category: 'lights' },
      ],
    });
    const similar = await eventually(async () => {
      const body = await gateway.graphql<Similar>(SIMILAR, { itemId: cold });
      return body.data?.similarItems.length ? body.data.similarItems : undefined;
    });

    expect(similar.map((r) => r.explanation.source)).toEqual(Array(5).fill('SIMILAR'));
    expect(similar.every((r) => aItems.includes(r.item.id))).toBe(true);
  });

  it('when a new item reads like a shopper’s taste then it can enter their learned list before its first event', async () => {
    const cold = uniqueId('cold-lantern');

    await gateway.graphql(UPSERT, {
      items: [{ id: cold, name: 'ivory cherry blossom lantern', description: 'paper lantern', category: 'lights' }],
    });
    const list = await eventually(async () => {
      const body = await gateway.graphql<ListBody>(RECOMMEND, { userId: newcomer });
      const items = body.data?.recommendations.items ?? [];
      return items.some((r) => r.item.id === cold) ? items : undefined;
    });

    // The newcomer bought a0..a2: the rest of A and the cold lanterns (this one, and the earlier test's garland
    // when it ran), all from the model, ahead of every ornament.
    expect(list.every((r) => r.explanation.source === 'LEARNED')).toBe(true);
    expect(list.map((r) => r.item.id)).toEqual(expect.arrayContaining(aItems.slice(3)));
    expect(list.every((r) => !bItems.includes(r.item.id))).toBe(true);
    expect(await gateway.app.db.event.count({ where: { itemId: cold } })).toBe(0);
  });

  it('when a new item shares no word with the trained items then it gets no vector and no similar items', async () => {
    const odd = uniqueId('odd');

    await gateway.graphql(UPSERT, { items: [{ id: odd, name: 'quantum flux capacitor' }] });
    // A later cold item's vector arriving shows the worker has handled the odd one's change before it.
    const marker = uniqueId('cold-marker');
    await gateway.graphql(UPSERT, { items: [{ id: marker, name: 'cherry blossom lantern', category: 'lights' }] });
    await eventually(
      async () => (await gateway.graphql<Similar>(SIMILAR, { itemId: marker })).data?.similarItems.length,
    );
    const body = await gateway.graphql<Similar>(SIMILAR, { itemId: odd });

    expect(body.data?.similarItems.filter((r) => r.explanation.source === 'SIMILAR')).toEqual([]);
  });
});
