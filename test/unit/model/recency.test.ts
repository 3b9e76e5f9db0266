import { describe, expect, it } from 'vitest';
import { DAY_MS, historyAges, recencyWeight, userItemMatrix } from '../../../src/model/interactions.ts';
import { tableRecommender } from '../../../src/model/item-to-item.ts';
import { neighbourTableFromRows } from '../../../src/model/neighbour-table.ts';
import { purchaseLog } from '../../helpers/interaction-log.ts';

/** Purchases from (user, item, day) rows. */
const logOf = (rows: [user: number, item: number, day: number][]) =>
  purchaseLog(rows.map(([u, i, day]) => [u, i, day * DAY_MS] as const));

describe('history recency', () => {
  it('gives each history entry the days between its last touch and the shopper’s newest event', () => {
    // Shopper 0 touches item 2 on days 1 and 9, item 0 on day 4, item 1 on day 10; shopper 1 item 1 on day 3.
    const log = logOf([
      [0, 2, 1],
      [0, 0, 4],
      [1, 1, 3],
      [0, 2, 9],
      [0, 1, 10],
    ]);
    const history = userItemMatrix(log, 2, 3, log.value);
    const ages = historyAges(log, history);

    const agesOf = (u: number) =>
      Object.fromEntries(
        Array.from(history.indices.subarray(history.indptr[u], history.indptr[u + 1]), (item, at) => [
          item,
          ages[(history.indptr[u] as number) + at],
        ]),
      );
    expect(agesOf(0)).toEqual({ 0: 6, 1: 0, 2: 1 });
    expect(agesOf(1)).toEqual({ 1: 0 });
  });

  it('halves a weight every half-life and leaves it whole when the half-life is off', () => {
    expect(recencyWeight(14, 7)).toBeCloseTo(0.25, 12);
    expect(recencyWeight(0, 7)).toBe(1);
    expect(recencyWeight(400, 0)).toBe(1);
    expect(recencyWeight(undefined, 7)).toBe(1);
  });

  it('when a table is read with a half-life then the recent item’s neighbours outrank an old item’s', () => {
    // Item 0 → 3 (0.9), 4 (0.8); item 1 → 5 (0.7); the shopper touched 0 sixty days before 1.
    const rows: Record<number, [number, number][]> = {
      0: [
        [3, 0.9],
        [4, 0.8],
      ],
      1: [[5, 0.7]],
    };
    const table = neighbourTableFromRows(6, 10, (item, out) => {
      for (const [to, weight] of rows[item] ?? []) out[to] = weight;
    });
    const history = Int32Array.from([0, 1]);
    const ages = Float32Array.from([60, 0]);
    const rank = (halfLife: number) => {
      const out = new Float32Array(6);
      tableRecommender(table, 'ease', halfLife).score(history, new Float32Array(2), out, ages);
      return [3, 4, 5].sort((a, b) => (out[b] as number) - (out[a] as number));
    };

    expect(rank(0)).toEqual([3, 4, 5]);
    expect(rank(30)).toEqual([5, 3, 4]);
  });
});
