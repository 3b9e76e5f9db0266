import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/model/als.ts';
import { invertSpd } from '../../../src/model/ease.ts';
import { easeFlags, easeSolve } from '../../../src/model/ease-kernel.ts';
import { createEaseExecutor, sharedSquare } from '../../../src/model/ease-pool.ts';

/** A Gram matrix of random baskets plus λI, as EASE builds it, in float32 (shared) and float64 copies. */
function gram(n: number, seed: number): { g: Float32Array; reference: Float64Array } {
  const random = seededRandom(seed);
  const g = sharedSquare(n);
  for (let u = 0; u < n * 3; u++) {
    const basket = Array.from({ length: 5 }, () => Math.floor(random() * n));
    for (const a of basket) for (const b of basket) g[a * n + b] = (g[a * n + b] as number) + 1;
  }
  for (let i = 0; i < n; i++) g[i * n + i] = (g[i * n + i] as number) + 20;
  return { g, reference: Float64Array.from(g) };
}

/** B from the float64 inverse: B[i][j] = −P[i][j] / P[j][j], zero diagonal. */
function referenceB(reference: Float64Array, n: number): Float64Array {
  invertSpd(reference, n);
  const b = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      b[i * n + j] = i === j ? 0 : -(reference[i * n + j] as number) / (reference[j * n + j] as number);
  return b;
}

function maxError(b: Float32Array, expected: Float64Array): number {
  let error = 0;
  for (let i = 0; i < expected.length; i++)
    error = Math.max(error, Math.abs((b[i] as number) - (expected[i] as number)));
  return error;
}

describe('easeSolve', () => {
  it('when one thread solves then B matches the float64 inverse to float32 precision, odd and even sizes alike', () => {
    for (const n of [1, 2, 37, 64]) {
      const { g, reference } = gram(n, n);
      const b = sharedSquare(n);

      easeSolve(g, b, n, easeFlags(n), 0, 1);

      expect(maxError(b, referenceB(reference, n))).toBeLessThan(1e-5);
    }
  });

  it('when two worker threads share the solve then B is the same as the float64 inverse', async () => {
    const n = 101;
    const { g, reference } = gram(n, 5);
    const b = sharedSquare(n);
    const executor = await createEaseExecutor(2);

    try {
      await executor.solve(g, b, n);
    } finally {
      await executor.close();
    }

    expect(executor.threads).toBe(2);
    expect(maxError(b, referenceB(reference, n))).toBeLessThan(1e-5);
  });
});
