import { describe, expect, it } from 'vitest';
import { vectorFromNeighbours } from '../../../src/model/neighbour-vector.ts';

describe('vectorFromNeighbours', () => {
  // Three trained items with two factors each, row-major.
  const itemFactors = new Float32Array([1, 0, 0, 1, 2, 2]);

  it('when neighbours are weighted then the vector is their weighted mean', () => {
    const vector = vectorFromNeighbours(itemFactors, 2, [
      { row: 0, weight: 3 },
      { row: 1, weight: 1 },
    ]);

    expect(Array.from(vector ?? [])).toEqual([0.75, 0.25]);
  });

  it('when there are no neighbours (or no weight) then there is no vector', () => {
    expect(vectorFromNeighbours(itemFactors, 2, [])).toBeUndefined();
    expect(vectorFromNeighbours(itemFactors, 2, [{ row: 2, weight: 0 }])).toBeUndefined();
  });
});
