import { describe, expect, it } from 'vitest';
import { canEnter, type EntryContext, type ListReach } from '../../src/services/list-reach.ts';

const closed: ListReach = { learned: null, coVisitBlocked: null, trendingCut: null, open: false };
const query = new Float32Array([1, 0]);
const itemVectors = new Map([
  ['close', new Float32Array([0.9, 0.1])],
  ['far', new Float32Array([0.1, 0.9])],
]);
const context: EntryContext = {
  currentVersionId: 1,
  modelScore: (_versionId, q, itemId) => {
    const v = itemVectors.get(itemId);
    return v && (q[0] as number) * (v[0] as number) + (q[1] as number) * (v[1] as number);
  },
  trending: new Map([
    ['hot', 5],
    ['cold', 1],
  ]),
};

describe('canEnter', () => {
  it('when an exact learned list ends at 0.5 then an item scoring above enters and one below does not', () => {
    const reach: ListReach = { ...closed, learned: { versionId: 1, query, threshold: 0.5, exact: true } };

    expect(canEnter(reach, 'close', context)).toBe(true);
    expect(canEnter(reach, 'far', context)).toBe(false);
    expect(canEnter(reach, 'no-vector', context)).toBe(false);
  });

  it('when the learned list came from the filtered walk then any item with a vector may enter', () => {
    const reach: ListReach = { ...closed, learned: { versionId: 1, query, threshold: 0.5, exact: false } };

    expect(canEnter(reach, 'far', context)).toBe(true);
    expect(canEnter(reach, 'no-vector', context)).toBe(false);
  });

  it('when an item-to-item list ends at 0.5 then an item its history reaches above enters, one below or unreached does not', () => {
    const history = { rows: Int32Array.of(0), weights: Float32Array.of(1) };
    const scores = new Map([
      ['close', 0.8],
      ['far', 0.2],
    ]);
    const withTable: EntryContext = { ...context, historyScore: (_versionId, _history, itemId) => scores.get(itemId) };
    const reach: ListReach = {
      ...closed,
      learned: { versionId: 1, query: new Float32Array(0), history, threshold: 0.5, exact: true },
    };

    expect(canEnter(reach, 'close', withTable)).toBe(true);
    expect(canEnter(reach, 'far', withTable)).toBe(false);
    expect(canEnter(reach, 'unreached', withTable)).toBe(false);
    // A context that cannot score histories errs towards recomputing.
    expect(canEnter(reach, 'unreached', context)).toBe(true);
  });

  it('when the list was ranked by a version no longer current then anything may enter', () => {
    const reach: ListReach = { ...closed, learned: { versionId: 0, query, threshold: 0.5, exact: true } };

    expect(canEnter(reach, 'far', context)).toBe(true);
  });

  it('when trending filled the list then only an item whose stored score reaches the cut enters', () => {
    const reach: ListReach = { ...closed, coVisitBlocked: [], trendingCut: 3 };

    expect(canEnter(reach, 'hot', context)).toBe(true);
    expect(canEnter(reach, 'cold', context)).toBe(false);
    expect(canEnter(reach, 'untouched', context)).toBe(false);
    expect(canEnter(reach, 'cold', { ...context, trending: null })).toBe(true);
  });

  it('when co-visitation skipped an item as not recommendable then that item, and only it, enters', () => {
    const reach: ListReach = { ...closed, coVisitBlocked: ['skipped'] };

    expect(canEnter(reach, 'skipped', context)).toBe(true);
    expect(canEnter(reach, 'other', context)).toBe(false);
    expect(canEnter({ ...reach, coVisitBlocked: 'any' }, 'other', context)).toBe(true);
  });

  it('when the list was topped up from the catalogue then anything enters', () => {
    expect(canEnter({ ...closed, open: true }, 'cold', context)).toBe(true);
  });
});
