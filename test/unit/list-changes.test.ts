import { describe, expect, it } from 'vitest';
import { type ComparableList, diffLists } from '../../src/services/list-changes.ts';

const at = new Date('2026-11-01T00:00:00Z');
const list = (ids: string[], options: Partial<Omit<ComparableList, 'items'>> = {}, updatedAt = at): ComparableList => ({
  items: ids.map((id) => ({ item: { id, updatedAt } })),
  strategy: options.strategy ?? 'als',
  modelVersion: options.modelVersion ?? 1,
});

describe('diffLists', () => {
  it('when the same items come back in the same order then nothing changed', () => {
    expect(diffLists(list(['a', 'b', 'c']), list(['a', 'b', 'c']), 'EVENT')).toBeNull();
  });

  it('when there was no list before then every item entered', () => {
    expect(diffLists(undefined, list(['a', 'b']), 'SUBSCRIBED')).toEqual({
      trigger: 'SUBSCRIBED',
      entered: ['a', 'b'],
      left: [],
    });
  });

  it('when items are swapped then entered and left name them in list order', () => {
    expect(diffLists(list(['a', 'b', 'c']), list(['d', 'a', 'e']), 'EVENT')).toEqual({
      trigger: 'EVENT',
      entered: ['d', 'e'],
      left: ['b', 'c'],
    });
  });

  it('when only the order changes then it is a change with nobody entering or leaving', () => {
    expect(diffLists(list(['a', 'b']), list(['b', 'a']), 'EVENT')).toEqual({ trigger: 'EVENT', entered: [], left: [] });
  });

  it('when a listed item was updated in the catalogue (price, stock) then the list changed', () => {
    const later = new Date(at.getTime() + 1);
    expect(diffLists(list(['a']), list(['a'], {}, later), 'CATALOG')).toEqual({
      trigger: 'CATALOG',
      entered: [],
      left: [],
    });
  });

  it('when another model version ranks the same items then the list changed', () => {
    expect(diffLists(list(['a']), list(['a'], { modelVersion: 2 }), 'MODEL')).not.toBeNull();
  });
});
