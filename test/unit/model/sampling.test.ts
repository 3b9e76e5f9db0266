import { describe, expect, it } from 'vitest';
import { evenSample, usersWithTestItems } from '../../../src/model/evaluation.ts';

describe('the hold-out sample', () => {
  it('takes the users with held-out items, in id order', () => {
    // users 0 and 2 have items, 1 and 3 none
    expect(usersWithTestItems(Int32Array.from([0, 2, 2, 3, 3]))).toEqual([0, 2]);
  });

  it('keeps at most max, spread over the whole pool, the same every time', () => {
    const pool = Array.from({ length: 10_000 }, (_, n) => n);
    const sample = evenSample(pool, 100);
    expect(sample).toHaveLength(100);
    expect(new Set(sample).size).toBe(100);
    expect(sample[0]).toBe(0);
    expect(sample.at(-1)).toBeGreaterThanOrEqual(9_800);
    expect(evenSample(pool, 100)).toEqual(sample);
  });

  it('keeps a pool smaller than max whole', () => {
    expect(evenSample([4, 7, 9], 100)).toEqual([4, 7, 9]);
  });
});
