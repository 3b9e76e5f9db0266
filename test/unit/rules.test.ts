import { describe, expect, it } from 'vitest';
import type { Item } from '../../src/generated/prisma/client.ts';
import type { Candidate } from '../../src/services/candidate-sources.ts';
import { demoCategoryOf } from '../../src/services/demo-categories.ts';
import { selectList } from '../../src/services/list-selection.ts';
import { checkRules, compileFilter, failedClause, mergeRules, NO_RULES } from '../../src/services/rules.ts';

const item = (id: string, category: string | null, price: number | null = 10): Item =>
  ({ id, category, price, inStock: true, attributes: {} }) as unknown as Item; // only the fields rules read
const filterable = (i: Item) => ({
  id: i.id,
  category: i.category,
  price: i.price === null ? null : Number(i.price),
  inStock: i.inStock,
  attributes: i.attributes,
});
const candidate = (i: Item): Candidate => ({
  item: i,
  score: 1,
  source: 'TRENDING',
  anchorItemId: null,
  modelVersion: null,
});

describe('mergeRules', () => {
  it('when a placement and a request both filter then both hold, and the request’s scalars win', () => {
    const placement = checkRules('rules', {
      filter: { categories: ['a', 'b'], priceMax: 50 },
      maxPerCategory: 3,
      diversity: 0.2,
      pins: [
        { itemId: 'x', position: 1 },
        { itemId: 'y', position: 9 },
      ],
      boosts: [{ filter: { categories: ['a'] }, factor: 2 }],
    });
    const request = checkRules(
      'rules',
      { filter: { categories: ['b', 'c'], priceMax: 30 }, maxPerCategory: 1, pins: [{ itemId: 'z', position: 1 }] },
      5,
    );

    const merged = mergeRules(placement, request, 5);

    expect([...(merged.filter.categories ?? [])]).toEqual(['b']);
    expect(merged.filter.priceMax).toBe(30);
    expect(merged).toMatchObject({ maxPerCategory: 1, diversity: 0.2, excludePurchased: true, reorders: true });
    // The request's pin takes position 1; the placement's pin at 9 lies beyond k.
    expect(merged.pins.map((p) => [p.itemId, p.origin])).toEqual([['z', 'REQUEST']]);
    expect(merged.boosts.map((b) => [b.origin, b.factor])).toEqual([['PLACEMENT', 2]]);
  });

  it('when neither gives rules then the list is in-stock items the shopper did not buy, unreordered', () => {
    expect(mergeRules(undefined, undefined, 10)).toBe(NO_RULES);
    expect(failedClause(NO_RULES.filter, { ...filterable(item('a', null)), inStock: false })).toBe('inStock');
  });

  it('when one filter lifts the stock requirement and none asks for it then out-of-stock items pass', () => {
    expect(compileFilter([{ inStock: false }, {}]).inStock).toBe(false);
    expect(compileFilter([{ inStock: false }, { inStock: true }]).inStock).toBe(true);
  });
});

describe('selectList', () => {
  it('when the list is shorter than a pin’s position then the pin closes it', () => {
    const rules = mergeRules(undefined, checkRules('rules', { pins: [{ itemId: 'p', position: 5 }] }, 5), 5);

    const { items } = selectList({
      pool: [candidate(item('a', 'x')), candidate(item('b', 'x'))],
      pins: [{ pin: rules.pins[0]!, item: item('p', 'y') }],
      k: 5,
      rules,
      filterableOf: () => undefined,
    });

    expect(items.map((r) => [r.item.id, r.position])).toEqual([
      ['a', 1],
      ['b', 2],
      ['p', 3],
    ]);
  });

  it('when diversity is 1 then the most similar candidate comes after the others', () => {
    const pool = ['a', 'a2', 'b', 'c'].map((id) => candidate(item(id, null)));
    const rules = mergeRules(undefined, checkRules('rules', { diversity: 1 }), 3);
    // a and a2 are near duplicates; b and c are unlike anything.
    const similarity = (x: string, y: string) => (x.startsWith('a') && y.startsWith('a') ? 0.99 : 0);

    const { items, cut } = selectList({ pool, pins: [], k: 3, rules, filterableOf: () => undefined, similarity });

    expect(items.map((r) => r.item.id)).toEqual(['a', 'b', 'c']);
    expect(cut.get('a2')).toBe('BELOW_CUT');
  });

  it('when a boost matches a later candidate then it moves up by its factor over the reciprocal rank', () => {
    const pool = ['a', 'b', 'c', 'd'].map((id, i) => candidate(item(id, i === 3 ? 'sale' : 'regular')));
    const rules = mergeRules(
      undefined,
      checkRules('rules', { boosts: [{ filter: { categories: ['sale'] }, factor: 3 }] }),
      4,
    );

    const { items } = selectList({
      pool,
      pins: [],
      k: 4,
      rules,
      filterableOf: (id) => filterable(pool.find((c) => c.item.id === id)!.item),
    });

    // d: 3 / 4 = 0.75 beats b (1/2) but not a (1).
    expect(items.map((r) => r.item.id)).toEqual(['a', 'd', 'b', 'c']);
    expect(items[1]!.boosts.map((b) => b.factor)).toEqual([3]);
  });
});

describe('demoCategoryOf', () => {
  it('when a name holds a keyword then the first matching row of the table names the category', () => {
    expect(demoCategoryOf('WHITE HANGING HEART T-LIGHT HOLDER')).toBe('candles');
    expect(demoCategoryOf('JUMBO BAG RED RETROSPOT')).toBe('bags');
    expect(demoCategoryOf('PAPER CHAIN KIT 50S CHRISTMAS')).toBe('christmas');
    expect(demoCategoryOf('REGENCY CAKESTAND 3 TIER')).toBe('other');
  });
});
