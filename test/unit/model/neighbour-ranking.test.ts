import { describe, expect, it } from 'vitest';
import { historyScore, makeRankingScratch, rankHistory } from '../../../src/model/neighbour-ranking.ts';
import { neighbourTableFromRows, scoreHistory } from '../../../src/model/neighbour-table.ts';

// Item i's weight towards j: a fixed pseudo-random matrix with some negatives and zeros.
const weight = (i: number, j: number) => ((i * 31 + j * 17) % 11) - 3;

describe('rankHistory', () => {
  const items = 40;
  const table = neighbourTableFromRows(items, 5, (i, out) => {
    for (let j = 0; j < items; j++) out[j] = weight(i, j);
  });
  const history = Int32Array.of(2, 7, 11);
  const weights = Float32Array.of(1, 0.5, 2);

  it('when a history is ranked then the items it reaches come best first with the scores scoreHistory sums', () => {
    const expected = new Float32Array(items);
    const touched = new Set<number>();
    scoreHistory(table, history, weights, expected, touched);

    const ranking = rankHistory(table, history, weights);

    expect([...ranking.items].sort((a, b) => a - b)).toEqual([...touched].sort((a, b) => a - b));
    for (let i = 0; i < ranking.items.length; i++) {
      expect(ranking.scores[i]).toBe(expected[ranking.items[i] as number]);
      if (i > 0) expect(ranking.scores[i]).toBeLessThanOrEqual(ranking.scores[i - 1] as number);
      expect(historyScore(table, history, weights, ranking.items[i] as number)).toBeCloseTo(
        ranking.scores[i] as number,
        5,
      );
    }
  });

  it('when several history items reach an item then its anchor is the one whose contribution was largest', () => {
    const ranking = rankHistory(table, history, weights);

    for (let i = 0; i < ranking.items.length; i++) {
      const item = ranking.items[i] as number;
      const contributions = [...history].map((h, n) => {
        const row = [...table.indices.subarray(table.indptr[h], table.indptr[h + 1])];
        const at = row.indexOf(item);
        return at < 0 ? 0 : (weights[n] as number) * (table.weights[(table.indptr[h] as number) + at] as number);
      });
      expect(ranking.anchors[i]).toBe(history[contributions.indexOf(Math.max(...contributions))]);
    }
  });

  it('when a limit is given then the best that many come in the full ranking’s order, and the count of all reached', () => {
    const full = rankHistory(table, history, weights);

    const cut = rankHistory(table, history, weights, undefined, 4);

    expect(full.reached).toBe(full.items.length);
    expect(cut.reached).toBe(full.items.length);
    expect([...cut.items]).toEqual([...full.items.slice(0, 4)]);
    expect([...cut.anchors]).toEqual([...full.anchors.slice(0, 4)]);
  });

  it('when the scratch is reused then a second ranking is not polluted by the first', () => {
    const scratch = makeRankingScratch(items);
    rankHistory(table, history, weights, scratch);

    const again = rankHistory(table, Int32Array.of(5), Float32Array.of(1), scratch);
    const fresh = rankHistory(table, Int32Array.of(5), Float32Array.of(1));

    expect(again).toEqual(fresh);
    expect(scratch.anchor.every((a) => a === -1)).toBe(true);
  });

  it('when history entries are out of range or weigh nothing then they reach nothing', () => {
    const ranking = rankHistory(table, Int32Array.of(-1, items, 3), Float32Array.of(1, 1, 0));

    expect(ranking.items).toHaveLength(0);
    expect(historyScore(table, Int32Array.of(3), Float32Array.of(0), 4)).toBe(0);
  });
});
