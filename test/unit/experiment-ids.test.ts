import { describe, expect, it } from 'vitest';
import { bucketsOf, RecommendationIds, recommendationIdKey, variantIndex } from '../../src/services/experiment-ids.ts';
import { MAX_ID_LENGTH } from '../../src/services/validation.ts';

const key = Buffer.from('a-test-key-of-at-least-thirty-two-characters');

describe('RecommendationIds', () => {
  it('reads back what it signed, within the stored id length', () => {
    const ids = new RecommendationIds(key);
    const origin = { experimentId: 'e'.repeat(40), phase: 123_456_789, variant: 'v'.repeat(32) };

    const id = ids.mint(origin);

    expect(ids.read(id)).toEqual({ kind: 'experiment', origin });
    expect(id.length).toBeLessThanOrEqual(MAX_ID_LENGTH);
    expect(ids.mint(origin)).not.toBe(id);
  });

  it('recognises an altered variant, a signature under another key and made-up ids', () => {
    const ids = new RecommendationIds(key);
    const id = ids.mint({ experimentId: 'exp', phase: 1, variant: 'control' });

    expect(ids.read(id.replace('.control.', '.treatment.'))).toEqual({ kind: 'forged' });
    expect(new RecommendationIds(Buffer.from('another-key-another-key-another-key')).read(id)).toEqual({
      kind: 'forged',
    });
    expect(ids.read('x1.exp.1.control.nonce')).toEqual({ kind: 'malformed' });
    expect(ids.read('x1.exp.0.control.AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA')).toEqual({ kind: 'malformed' });
    expect(ids.read('anything')).toEqual({ kind: 'malformed' });
    expect(ids.read('9b2f7c1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b')).toEqual({ kind: 'plain' });
  });

  it('takes RECOMMENDATION_ID_KEY, else a key derived from USER_ID_KEY, else the development key', () => {
    const own = recommendationIdKey({ RECOMMENDATION_ID_KEY: 'k'.repeat(32), USER_ID_KEY: 'u'.repeat(32) });
    const derived = recommendationIdKey({ RECOMMENDATION_ID_KEY: '', USER_ID_KEY: 'u'.repeat(32) });
    const development = recommendationIdKey({ RECOMMENDATION_ID_KEY: '', USER_ID_KEY: '' });

    expect(own).toEqual({ key: Buffer.from('k'.repeat(32)), development: false });
    expect(derived.development).toBe(false);
    expect(derived.key.equals(Buffer.from('u'.repeat(32)))).toBe(false);
    expect(development.development).toBe(true);
  });
});

describe('assignment', () => {
  it('is the same for the same salt and shopper, and splits shoppers by the weights', () => {
    const weights = [1, 3];
    const counts = [0, 0];
    for (let i = 0; i < 20_000; i++) {
      const index = variantIndex(bucketsOf('salt', `shopper-${i}`).variant, weights);
      counts[index] = (counts[index] ?? 0) + 1;
    }

    expect(bucketsOf('salt', 'shopper-1')).toEqual(bucketsOf('salt', 'shopper-1'));
    expect(bucketsOf('other', 'shopper-1')).not.toEqual(bucketsOf('salt', 'shopper-1'));
    expect(counts[1]! / 20_000).toBeGreaterThan(0.74);
    expect(counts[1]! / 20_000).toBeLessThan(0.76);
  });

  it('keeps most shoppers in their variant when a weight changes a little', () => {
    let moved = 0;
    for (let i = 0; i < 10_000; i++) {
      const draw = bucketsOf('salt', `shopper-${i}`).variant;
      if (variantIndex(draw, [1, 1]) !== variantIndex(draw, [1.1, 1])) moved++;
    }

    // Cumulative buckets: only the draws between the old and the new boundary (about 2.4 %) change variant.
    expect(moved / 10_000).toBeLessThan(0.04);
  });
});
