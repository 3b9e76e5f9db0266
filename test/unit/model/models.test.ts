import { describe, expect, it } from 'vitest';
import { fitCooccurrence } from '../../../src/model/cooccurrence.ts';
import { fitEase, invertSpd } from '../../../src/model/ease.ts';
import { inProcessEaseExecutor } from '../../../src/model/ease-pool.ts';
import { buildCsr, eventWeights, transposeCsr } from '../../../src/model/interactions.ts';
import { fitItemSimilarity } from '../../../src/model/item-similarity.ts';
import { fitPopularity } from '../../../src/model/popularity.ts';

// Users × items: u0 {0,1,2}, u1 {0,1}, u2 {1,3}, u3 {0}.
const matrix = buildCsr(
  4,
  4,
  Int32Array.from([0, 0, 0, 1, 1, 2, 2, 3, 0]),
  Int32Array.from([0, 1, 2, 0, 1, 1, 3, 0, 0]),
  Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 2]),
);

describe('buildCsr', () => {
  it('sums duplicate (row, col) entries and transposes', () => {
    const t = transposeCsr(matrix);

    expect(Array.from(matrix.indptr)).toEqual([0, 3, 5, 7, 8]);
    expect(matrix.data[0]).toBe(3); // u0's item 0 appeared twice, weights 1 + 2
    expect(Array.from(t.indptr)).toEqual([0, 3, 6, 7, 8]);
    expect(Array.from(t.indices.subarray(0, 3))).toEqual([0, 1, 3]);
  });
});

describe('eventWeights', () => {
  it('weighs event types, decays by age and ignores type weights when there is one type', () => {
    const log = {
      user: Int32Array.from([0, 0, 0]),
      item: Int32Array.from([0, 1, 2]),
      time: Float64Array.from([0, 86_400_000, 2 * 86_400_000]),
      type: Uint8Array.from([0, 1, 1]),
      value: Float32Array.from([1, 1, 1]),
    };

    const weights = eventWeights(log, ['view', 'purchase'], { typeWeights: { view: 1, purchase: 8 }, halfLifeDays: 1 });
    const single = eventWeights({ ...log, type: new Uint8Array(3) }, ['purchase'], { typeWeights: { purchase: 8 } });

    expect(Array.from(weights)).toEqual([0.25, 4, 8]);
    expect(Array.from(single)).toEqual([1, 1, 1]);
  });
});

describe('baselines', () => {
  it('popularity scores items by distinct users', () => {
    const out = new Float32Array(4);

    fitPopularity(matrix).score(new Int32Array(0), new Float32Array(0), out);

    expect(Array.from(out)).toEqual([3, 3, 1, 1]);
  });

  it('co-occurrence counts the users two items share', () => {
    const model = fitCooccurrence(matrix, transposeCsr(matrix));
    const out = new Float32Array(4);

    model.score(Int32Array.from([1]), Float32Array.from([1]), out);

    // Item 1 shares u0 and u1 with item 0, u0 with item 2, u2 with item 3.
    expect(Array.from(out)).toEqual([2, 0, 1, 1]);
  });

  it('item-kNN with the plain cosine divides by the square roots of both item counts', () => {
    const model = fitItemSimilarity('itemknn', matrix, transposeCsr(matrix), { similarity: 'cosine', alpha: 0.5 });

    const { items, scores } = model.similar(1);
    const byItem = new Map(Array.from(items, (i, n) => [i, scores[n] as number]));

    expect(byItem.get(0)).toBeCloseTo(2 / Math.sqrt(3 * 3), 6);
    expect(byItem.get(3)).toBeCloseTo(1 / Math.sqrt(3 * 1), 6);
  });
});

describe('EASE', () => {
  it('invertSpd returns the inverse of a symmetric positive-definite matrix', () => {
    const a = Float64Array.from([4, 2, 0.6, 2, 5, 1, 0.6, 1, 3]);
    const inverse = a.slice();

    invertSpd(inverse, 3);

    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let m = 0; m < 3; m++) s += (a[i * 3 + m] as number) * (inverse[m * 3 + j] as number);
        expect(s).toBeCloseTo(i === j ? 1 : 0, 10);
      }
    }
  });

  it('scores items that co-occur with the history above items that do not', async () => {
    const model = await fitEase(matrix, { lambda: 0.5 }, inProcessEaseExecutor());
    const out = new Float32Array(4);

    model.score(Int32Array.from([2]), Float32Array.from([1]), out);

    // Item 2 appears only with u0, who also has items 0 and 1; item 3 never co-occurs with it.
    expect(out[0]).toBeGreaterThan(out[3] as number);
    expect(out[1]).toBeGreaterThan(out[3] as number);
  });
});
