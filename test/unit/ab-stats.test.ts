import { describe, expect, it } from 'vitest';
import {
  chiSquareSurvival,
  momentsOf,
  normalCdf,
  sampleRatio,
  t975,
  tTwoSided,
  twoProportion,
  welch,
} from '../../src/model/ab-stats.ts';

/** A seeded generator (mulberry32), so repetitions are the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('distributions', () => {
  it('gives the normal CDF of standard tables', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-3)).toBeCloseTo(0.0013498980316301, 7);
  });

  it('gives chi-square tail probabilities of standard tables', () => {
    expect(chiSquareSurvival(3.841458820694124, 1)).toBeCloseTo(0.05, 8);
    expect(chiSquareSurvival(10.827566170662733, 1)).toBeCloseTo(0.001, 8);
    expect(chiSquareSurvival(5.991464547107979, 2)).toBeCloseTo(0.05, 8);
    expect(chiSquareSurvival(16.918977604620448, 9)).toBeCloseTo(0.05, 8);
    expect(chiSquareSurvival(0, 3)).toBe(1);
  });

  it('gives Student t quantiles of standard tables', () => {
    expect(t975(1)).toBeCloseTo(12.706204736, 5);
    expect(t975(10)).toBeCloseTo(2.228138852, 6);
    expect(t975(1e9)).toBeCloseTo(1.959963985, 6);
    expect(tTwoSided(2.228138852, 10)).toBeCloseTo(0.05, 7);
  });
});

describe('twoProportion', () => {
  it('when the treatment converts better then the interval excludes zero', () => {
    const result = twoProportion(100, 1000, 150, 1000);

    expect(result?.estimate).toBeCloseTo(0.05, 10);
    expect(result?.low).toBeGreaterThan(0);
    expect(result?.pValue).toBeLessThan(0.001);
  });

  it('when both sides draw from one rate then about 5 % of repetitions are significant', () => {
    const random = seeded(13);
    let significant = 0;
    const repetitions = 400;
    for (let r = 0; r < repetitions; r++) {
      let x1 = 0;
      let x2 = 0;
      for (let i = 0; i < 500; i++) {
        if (random() < 0.1) x1++;
        if (random() < 0.1) x2++;
      }
      if (twoProportion(x1, 500, x2, 500)?.significant) significant++;
    }

    expect(significant / repetitions).toBeLessThan(0.09);
    expect(significant / repetitions).toBeGreaterThan(0.01);
  });
});

describe('welch', () => {
  it('matches a textbook Welch interval', () => {
    // Means 20 and 22, variances 4 and 9, 10 and 12 units: t = 1.865, p = 0.077546 (scipy's ttest_ind_from_stats).
    const result = welch({ n: 10, mean: 20, variance: 4 }, { n: 12, mean: 22, variance: 9 });

    expect(result?.estimate).toBe(2);
    expect(result?.pValue).toBeCloseTo(0.0775464386820586, 10);
    expect(result?.significant).toBe(false);
  });

  it('computes moments from sums', () => {
    expect(momentsOf(4, 10, 30)).toEqual({ n: 4, mean: 2.5, variance: (30 - 25) / 3 });
  });
});

describe('sampleRatio', () => {
  it('flags a split far from the weights and passes one close to them', () => {
    expect(sampleRatio([5000, 4500], [1, 1]).flagged).toBe(true);
    expect(sampleRatio([5020, 4980], [1, 1]).flagged).toBe(false);
    expect(sampleRatio([2000, 1000], [2, 1]).pValue).toBeCloseTo(1, 8);
  });
});
