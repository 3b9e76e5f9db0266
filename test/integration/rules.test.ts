import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const RECOMMEND = `query($userId: ID!, $k: Int, $placement: ID, $rules: RulesInput) {
  recommendations(userId: $userId, k: $k, placement: $placement, rules: $rules) {
    strategy
    items {
      reason
      item { id category price }
      explanation { source anchorItem { id } modelVersion rules { kind origin index factor position } }
    }
  }
}`;
const UPSERT_PLACEMENT = `mutation($id: ID!, $description: String, $rules: RulesInput!) {
  upsertPlacement(id: $id, description: $description, rules: $rules) { id description rules }
}`;
const WATCH = `subscription($userId: ID!, $k: Int, $placement: ID) {
  recommendationsUpdated(userId: $userId, k: $k, placement: $placement) {
    items { item { id category } }
    change { trigger }
  }
}`;

interface Listed {
  reason: string;
  item: { id: string; category: string | null; price: string | null };
  explanation: {
    source: string;
    anchorItem: { id: string } | null;
    modelVersion: number | null;
    rules: { kind: string; origin: string; index: number; factor: number | null; position: number | null }[];
  };
}
interface ListBody {
  recommendations: { strategy: string; items: Listed[] };
}
interface Pushed {
  recommendationsUpdated: { items: { item: { id: string; category: string | null } }[]; change: { trigger: string } };
}

describe('merchandising rules', () => {
  let gateway: RunningGateway;
  const cat = (c: string, i: number) => ({
    id: uniqueId(`${c}${i}`),
    name: `${c} ${i}`,
    category: c,
    price: 10 * (i + 1),
    currency: 'EUR',
    attributes: { brand: i % 2 === 0 ? 'acme' : 'globex' },
  });
  const shoes = Array.from({ length: 6 }, (_, i) => cat('shoes', i));
  const hats = Array.from({ length: 6 }, (_, i) => cat('hats', i));
  const bags = Array.from({ length: 6 }, (_, i) => cat('bags', i));
  const everything = [...shoes, ...hats, ...bags];
  const shopper = uniqueId('shopper');

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: everything,
    });
    // Hats trend most, then bags; the shopper viewed shoes[0] and bought bags[0].
    const crowd = everything.flatMap((item, i) =>
      Array.from({ length: item.category === 'hats' ? 6 : item.category === 'bags' ? 3 : 1 }, () => ({
        userId: uniqueId('crowd'),
        type: 'VIEW',
        itemId: item.id,
        occurredAt: new Date(Date.now() - (i + 1) * 60_000).toISOString(),
      })),
    );
    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
      inputs: [
        ...crowd,
        { userId: shopper, type: 'VIEW', itemId: shoes[0]!.id },
        { userId: shopper, type: 'PURCHASE', itemId: bags[0]!.id },
      ],
    });
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 10_000);
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a request filters, pins and caps then the list keeps them and explains each item', async () => {
    const pinned = shoes[3]!.id;

    const body = await gateway.graphql<ListBody>(RECOMMEND, {
      userId: shopper,
      k: 4,
      rules: {
        filter: { categories: ['hats', 'shoes'], priceMax: 50 },
        pins: [{ itemId: pinned, position: 2 }],
        maxPerCategory: 2,
        excludeSeenWithinHours: 1,
      },
    });

    expect(body.errors).toBeUndefined();
    const items = body.data!.recommendations.items;
    expect(items).toHaveLength(4);
    expect(items[1]).toMatchObject({
      reason: 'pinned',
      item: { id: pinned },
      explanation: { source: 'PINNED', rules: [{ kind: 'PIN', origin: 'REQUEST', index: 0, position: 2 }] },
    });
    expect(items.every((r) => ['hats', 'shoes'].includes(r.item.category ?? '') && Number(r.item.price) <= 50)).toBe(
      true,
    );
    expect(items.filter((r) => r.item.category === 'hats')).toHaveLength(2);
    expect(items.map((r) => r.item.id)).not.toContain(shoes[0]!.id);
  });

  it('when a boost buries the top category then the others lead, and the boost is named on the items it moved', async () => {
    const body = await gateway.graphql<ListBody>(RECOMMEND, {
      userId: uniqueId('newcomer'),
      k: 3,
      rules: { boosts: [{ filter: { categories: ['hats'] }, factor: 0.01 }] },
    });

    const items = body.data!.recommendations.items;
    expect(items.map((r) => r.item.category)).toEqual(['bags', 'bags', 'bags']);
    expect(items[0]!.explanation).toMatchObject({ source: 'TRENDING', rules: [] });
  });

  it('when a shopper viewed an item then its co-visited items name it as their anchor', async () => {
    const viewer = uniqueId('viewer');
    const sessionId = uniqueId('session');
    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
      inputs: [
        { userId: uniqueId('other'), type: 'VIEW', itemId: hats[4]!.id, sessionId },
        { userId: uniqueId('other'), type: 'VIEW', itemId: shoes[5]!.id, sessionId },
      ],
    });
    const other = uniqueId('pair');
    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
      inputs: [
        { userId: other, type: 'VIEW', itemId: hats[4]!.id, sessionId: `${sessionId}-2` },
        { userId: other, type: 'VIEW', itemId: shoes[5]!.id, sessionId: `${sessionId}-2` },
        { userId: viewer, type: 'VIEW', itemId: hats[4]!.id },
      ],
    });

    const body = await eventually(async () => {
      const listed = await gateway.graphql<ListBody>(RECOMMEND, { userId: viewer, k: 1 });
      return listed.data?.recommendations.items[0]?.explanation.source === 'CO_VISITED' ? listed : undefined;
    });

    expect(body.data!.recommendations.items[0]).toMatchObject({
      item: { id: shoes[5]!.id },
      explanation: { source: 'CO_VISITED', anchorItem: { id: hats[4]!.id } },
    });
  });

  it('when the filter leaves fewer candidates than the sources hold then the catalogue fills the list to k', async () => {
    const body = await gateway.graphql<ListBody>(RECOMMEND, {
      userId: uniqueId('newcomer'),
      k: 5,
      rules: { filter: { attributes: { brand: 'acme' }, categories: ['shoes', 'bags'] } },
    });

    const items = body.data!.recommendations.items;
    expect(items).toHaveLength(5);
    const acme = new Set(everything.filter((i) => i.attributes.brand === 'acme').map((i) => i.id));
    expect(items.every((r) => acme.has(r.item.id) && r.item.category !== 'hats')).toBe(true);
  });

  it('when REST and GraphQL ask with the same rules then they give the same list', async () => {
    const rules = {
      filter: { categories: ['hats', 'bags'], priceMin: 20, priceMax: 50, excludeItemIds: [hats[2]!.id] },
    };
    await gateway.graphql(UPSERT_PLACEMENT, { id: 'rest-home', rules: { maxPerCategory: 2 } });
    const query = new URLSearchParams([
      ['user_id', shopper],
      ['k', '4'],
      ['category', 'hats'],
      ['category', 'bags'],
      ['price_min', '20'],
      ['price_max', '50'],
      ['exclude', hats[2]!.id],
      ['placement', 'rest-home'],
    ]);

    const graphql = await gateway.graphql<ListBody>(RECOMMEND, {
      userId: shopper,
      k: 4,
      placement: 'rest-home',
      rules,
    });
    const rest = (await (await fetch(`${gateway.url}/api/recommendations?${query}`)).json()) as {
      recommendations: { product_id: string; source: string }[];
    };

    const ids = graphql.data!.recommendations.items.map((r) => r.item.id);
    expect(ids).toHaveLength(4);
    expect(rest.recommendations.map((r) => r.product_id)).toEqual(ids);
    expect(rest.recommendations.map((r) => r.source)).toEqual(
      graphql.data!.recommendations.items.map((r) => r.explanation.source),
    );
  });

  it('when a request names a placement and adds rules then both filters hold and the request’s pin wins its position', async () => {
    await gateway.graphql(UPSERT_PLACEMENT, {
      id: 'merge',
      description: 'hats and shoes, one of each first',
      rules: { filter: { categories: ['hats', 'shoes'] }, pins: [{ itemId: hats[5]!.id, position: 1 }] },
    });

    const body = await gateway.graphql<ListBody>(RECOMMEND, {
      userId: uniqueId('newcomer'),
      k: 3,
      placement: 'merge',
      rules: { filter: { categories: ['shoes', 'bags'] }, pins: [{ itemId: shoes[1]!.id, position: 1 }] },
    });

    const items = body.data!.recommendations.items;
    expect(items[0]).toMatchObject({ item: { id: shoes[1]!.id }, explanation: { rules: [{ origin: 'REQUEST' }] } });
    expect(items.every((r) => r.item.category === 'shoes')).toBe(true);
  });

  it('when a placement is listed, replaced and deleted then placements follows', async () => {
    const id = uniqueId('pl');
    await gateway.graphql(UPSERT_PLACEMENT, { id, rules: { maxPerCategory: 1 } });
    await gateway.graphql(UPSERT_PLACEMENT, { id, description: 'v2', rules: { diversity: 0.5 } });

    const listed = await gateway.graphql<{ placements: { id: string; description: string; rules: unknown }[] }>(
      '{ placements { id description rules } }',
    );
    const deleted = await gateway.graphql<{ deletePlacement: boolean }>(
      'mutation($id: ID!) { deletePlacement(id: $id) }',
      { id },
    );
    const again = await gateway.graphql<{ deletePlacement: boolean }>(
      'mutation($id: ID!) { deletePlacement(id: $id) }',
      { id },
    );
    const unknown = await gateway.graphql(RECOMMEND, { userId: shopper, placement: id });

    expect(listed.data!.placements.find((p) => p.id === id)).toEqual({
      id,
      description: 'v2',
      rules: { diversity: 0.5 },
    });
    expect(deleted.data!.deletePlacement).toBe(true);
    expect(again.data!.deletePlacement).toBe(false);
    expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'placement', rule: 'exists' });
  });

  it('when a placement changes on another gateway then a subscription naming it here gets a fresh list', async () => {
    const id = uniqueId('home');
    await gateway.graphql(UPSERT_PLACEMENT, { id, rules: { filter: { categories: ['hats'] } } });
    const replica = await startGateway(gateway.config, { workers: false });
    try {
      const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId: shopper, k: 2, placement: id });
      const first = await subscription.next();

      await replica.graphql(UPSERT_PLACEMENT, { id, rules: { filter: { categories: ['shoes'] } } });
      const pushed = await subscription.next();
      await subscription.close();

      expect(first.data!.recommendationsUpdated.items.every((r) => r.item.category === 'hats')).toBe(true);
      expect(pushed.data!.recommendationsUpdated.change.trigger).toBe('PLACEMENT');
      expect(pushed.data!.recommendationsUpdated.items.map((r) => r.item.category)).toEqual(['shoes', 'shoes']);
      expect(gateway.app.services.recommendations.fanout.recomputes.PLACEMENT).toBeGreaterThan(0);
    } finally {
      await replica.stop();
    }
  });

  it('when a price change brings an item into a subscription’s filter then the list is pushed with it', async () => {
    const gadget = { id: uniqueId('gadget'), name: 'gadget', category: 'gadgets', price: 99, currency: 'EUR' };
    const cheap = {
      id: uniqueId('cheap-gadget'),
      name: 'cheap gadget',
      category: 'gadgets',
      price: 3,
      currency: 'EUR',
    };
    const upsert = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;
    await gateway.graphql(upsert, { items: [gadget, cheap] });
    const subscription = subscribe<Pushed>(
      gateway.wsClient(),
      `subscription($userId: ID!, $rules: RulesInput) {
        recommendationsUpdated(userId: $userId, k: 3, rules: $rules) { items { item { id category } } change { trigger } }
      }`,
      { userId: uniqueId('watcher'), rules: { filter: { categories: ['gadgets'], priceMax: 10 } } },
    );
    const first = await subscription.next();

    await gateway.graphql(upsert, { items: [{ ...gadget, price: 9 }] });
    const pushed = await subscription.next();
    await subscription.close();

    expect(first.data!.recommendationsUpdated.items.map((r) => r.item.id)).toEqual([cheap.id]);
    expect(pushed.data!.recommendationsUpdated.change.trigger).toBe('CATALOG');
    expect(pushed.data!.recommendationsUpdated.items.map((r) => r.item.id).sort()).toEqual(
      [cheap.id, gadget.id].sort(),
    );
  });

  it('when an admin previews then the list comes with the candidates the rules removed and why', async () => {
    const body = await gateway.graphql<{
      previewRecommendations: {
        list: { items: { item: { id: string } }[] };
        removed: { item: { id: string; category: string }; source: string; removedBy: string; clause: string | null }[];
      };
    }>(
      `query($userId: ID!, $rules: RulesInput) {
        previewRecommendations(userId: $userId, k: 2, rules: $rules) {
          list { items { item { id } } }
          removed { item { id category } source score removedBy clause boosts { kind factor } }
        }
      }`,
      { userId: shopper, rules: { filter: { excludeCategories: ['hats'] }, maxPerCategory: 1 } },
    );

    expect(body.errors).toBeUndefined();
    const { list, removed } = body.data!.previewRecommendations;
    expect(list.items).toHaveLength(2);
    expect(
      removed.some((r) => r.item.category === 'hats' && r.removedBy === 'FILTER' && r.clause === 'excludeCategories'),
    ).toBe(true);
    expect(removed.some((r) => r.item.id === bags[0]!.id && r.removedBy === 'EXCLUDE_PURCHASED')).toBe(true);
    expect(removed.some((r) => r.removedBy === 'MAX_PER_CATEGORY')).toBe(true);
  });
});

describe('bad rules', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ ADMIN_TOKEN: 'rules-admin-token' }), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  const admin = (query: string, variables: Record<string, unknown>) =>
    fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer rules-admin-token' },
      body: JSON.stringify({ query, variables }),
    }).then((r) => r.json() as Promise<{ errors?: { extensions?: Record<string, unknown> }[]; data?: unknown }>);

  const pins = (n: number) => Array.from({ length: n }, (_, i) => ({ itemId: `p${i}`, position: i + 1 }));
  const cases: { name: string; rules: Record<string, unknown>; field: string; rule: string; k?: number }[] = [
    {
      name: 'priceMin above priceMax',
      rules: { filter: { priceMin: 9, priceMax: 3 } },
      field: 'rules.filter.priceMin',
      rule: 'lessOrEqualPriceMax',
    },
    { name: 'a negative price', rules: { filter: { priceMax: -1 } }, field: 'rules.filter.priceMax', rule: 'min' },
    {
      name: 'a pin at position 0',
      rules: { pins: [{ itemId: 'a', position: 0 }] },
      field: 'rules.pins[0].position',
      rule: 'range',
    },
    {
      name: 'a pin beyond k',
      rules: { pins: [{ itemId: 'a', position: 4 }] },
      field: 'rules.pins[0].position',
      rule: 'range',
      k: 3,
    },
    {
      name: 'two pins at one position',
      rules: {
        pins: [
          { itemId: 'a', position: 1 },
          { itemId: 'b', position: 1 },
        ],
      },
      field: 'rules.pins[1].position',
      rule: 'unique',
    },
    { name: 'more than 20 pins', rules: { pins: pins(21) }, field: 'rules.pins', rule: 'maxItems', k: 30 },
    {
      name: 'more than 50 boosts',
      rules: { boosts: Array.from({ length: 51 }, () => ({ filter: {}, factor: 2 })) },
      field: 'rules.boosts',
      rule: 'maxItems',
    },
    {
      name: 'a factor of 0',
      rules: { boosts: [{ filter: {}, factor: 0 }] },
      field: 'rules.boosts[0].factor',
      rule: 'range',
    },
    {
      name: 'a negative factor',
      rules: { boosts: [{ filter: {}, factor: -2 }] },
      field: 'rules.boosts[0].factor',
      rule: 'range',
    },
    {
      name: 'attributes as an array',
      rules: { filter: { attributes: ['acme'] } },
      field: 'rules.filter.attributes',
      rule: 'type',
    },
    {
      name: 'an attribute that is an object',
      rules: { filter: { attributes: { brand: { name: 'acme' } } } },
      field: 'rules.filter.attributes.brand',
      rule: 'type',
    },
    { name: 'diversity above 1', rules: { diversity: 1.5 }, field: 'rules.diversity', rule: 'range' },
    { name: 'diversity below 0', rules: { diversity: -0.1 }, field: 'rules.diversity', rule: 'range' },
    { name: 'maxPerCategory 0', rules: { maxPerCategory: 0 }, field: 'rules.maxPerCategory', rule: 'range' },
  ];

  it.each(cases)(
    'when a request has $name then it is INVALID_INPUT naming $field',
    async ({ rules, field, rule, k }) => {
      const body = await gateway.graphql(
        'query($rules: RulesInput, $k: Int) { recommendations(userId: "u1", k: $k, rules: $rules) { strategy } }',
        { rules, k: k ?? 10 },
      );
      const placement = await admin(UPSERT_PLACEMENT, { id: 'bad', rules });

      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_INPUT', field, rule });
      // The pin beyond k is a request's mistake only: a placement is used with every k, up to 100.
      if (k === undefined)
        expect(placement.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_INPUT', field, rule });
    },
  );

  it('when a factor is not finite then the stored placement is refused', async () => {
    const { checkRules } = await import('../../src/services/rules.ts');

    expect(() => checkRules('rules', { boosts: [{ filter: {}, factor: Number.POSITIVE_INFINITY }] })).toThrowError(
      expect.objectContaining({ field: 'rules.boosts[0].factor', rule: 'range' }),
    );
  });

  it('when a placement is unknown or its id too long then the request is NOT_FOUND or INVALID_INPUT', async () => {
    const unknown = await gateway.graphql('{ recommendations(userId: "u1", placement: "nowhere") { strategy } }');
    const long = await gateway.graphql('query($p: ID) { recommendations(userId: "u1", placement: $p) { strategy } }', {
      p: 'x'.repeat(101),
    });
    const upsertLong = await admin(UPSERT_PLACEMENT, { id: 'x'.repeat(101), rules: {} });

    expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'placement', rule: 'exists' });
    expect(long.errors?.[0]?.extensions).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'placement',
      rule: 'maxLength',
    });
    expect(upsertLong.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_INPUT', field: 'id', rule: 'maxLength' });
  });

  it('when REST gets bad rule parameters then it answers 400 (404 for an unknown placement) with the field and the rule', async () => {
    const ask = async (query: string) => {
      const response = await fetch(`${gateway.url}/api/recommendations?user_id=u1&${query}`);
      return { status: response.status, body: (await response.json()) as { error: Record<string, unknown> } };
    };

    const inverted = await ask('price_min=9&price_max=3');
    const negative = await ask('price_max=-1');
    const notANumber = await ask('price_min=cheap');
    const unknown = await ask('placement=nowhere');
    const long = await ask(`placement=${'x'.repeat(101)}`);

    expect(inverted).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_INPUT', field: 'price_min', rule: 'lessOrEqualPriceMax' } },
    });
    expect(negative).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_INPUT', field: 'price_max', rule: 'min' } },
    });
    expect(notANumber).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_INPUT', field: 'price_min', rule: 'type' } },
    });
    expect(unknown).toMatchObject({
      status: 404,
      body: { error: { code: 'NOT_FOUND', field: 'placement', rule: 'exists' } },
    });
    expect(long).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_INPUT', field: 'placement', rule: 'maxLength' } },
    });
  });

  it('when a caller without the admin token manages placements or previews then it is FORBIDDEN', async () => {
    const upsert = await gateway.graphql(UPSERT_PLACEMENT, { id: 'home', rules: {} });
    const list = await gateway.graphql('{ placements { id } }');
    const preview = await gateway.graphql('{ previewRecommendations(userId: "u1") { removed { removedBy } } }');
    const asAdmin = await admin(UPSERT_PLACEMENT, { id: 'home', rules: { maxPerCategory: 2 } });

    for (const body of [upsert, list, preview])
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN' });
    expect(asAdmin.errors).toBeUndefined();
  });
});
