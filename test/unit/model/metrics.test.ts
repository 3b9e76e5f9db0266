import { describe, expect, it } from 'vitest';
import {
  averagePrecisionAtK,
  ndcgAtK,
  precisionAtK,
  RankingMetrics,
  recallAtK,
  topK,
} from '../../../src/model/metrics.ts';

// One ranked list checked by hand: hits at ranks 1 and 3 of 5, three relevant items, k = 5.
const ranked = [7, 1, 4, 9, 2];
const relevant = new Set([7, 4, 8]);

describe('ranking metrics', () => {
  it('precision@k is hits over k', () => {
    expect(precisionAtK(ranked, relevant, 5)).toBeCloseTo(2 / 5, 12);
  });

  it('recall@k divides by min(k, |relevant|)', () => {
    expect(recallAtK(ranked, relevant, 5)).toBeCloseTo(2 / 3, 12);
    expect(recallAtK(ranked, relevant, 2)).toBeCloseTo(1 / 2, 12);
  });

  it('ndcg@k uses binary gains over the ideal ordering', () => {
    const dcg = 1 / Math.log2(2) + 1 / Math.log2(4);
    const ideal = 1 / Math.log2(2) + 1 / Math.log2(3) + 1 / Math.log2(4);

    expect(ndcgAtK(ranked, relevant, 5)).toBeCloseTo(dcg / ideal, 12);
  });

  it('map@k averages precision at each hit over min(k, |relevant|)', () => {
    expect(averagePrecisionAtK(ranked, relevant, 5)).toBeCloseTo((1 / 1 + 2 / 3) / 3, 12);
  });

  it('averages over users and counts catalogue coverage of the lists', () => {
    const metrics = new RankingMetrics(2, 10);

    metrics.add([0, 1], new Set([0]));
    metrics.add([1, 2], new Set([5, 6]));
    metrics.add([3, 4], new Set());
    const summary = metrics.summary();

    expect(summary.users).toBe(2);
    expect(summary.precision).toBeCloseTo((1 / 2 + 0) / 2, 12);
    expect(summary.recall).toBeCloseTo((1 + 0) / 2, 12);
    expect(summary.ndcg).toBeCloseTo(0.5, 12);
    expect(summary.map).toBeCloseTo(0.5, 12);
    expect(summary.coverage).toBeCloseTo(3 / 10, 12);
  });
});

describe('topK', () => {
  it('returns the best scores first, skipping excluded items and breaking ties by lower index', () => {
    const scores = Float32Array.from([0.5, 2, Number.NEGATIVE_INFINITY, 2, 1, 3]);
    const out = new Int32Array(4);

    const n = topK(scores, 4, out);

    expect(n).toBe(4);
    expect(Array.from(out)).toEqual([5, 1, 3, 4]);
  });

  it('returns fewer than k when fewer items are eligible', () => {
    const out = new Int32Array(3);

    const n = topK(Float32Array.from([Number.NEGATIVE_INFINITY, 1]), 3, out);

    expect(n).toBe(1);
    expect(out[0]).toBe(1);
  });
});
