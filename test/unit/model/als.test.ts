import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlsTrainer, seededRandom } from '../../../src/model/als.ts';
import { type AlsExecutor, createAlsExecutor, inProcessExecutor } from '../../../src/model/als-pool.ts';
import { foldIn } from '../../../src/model/fold-in.ts';
import { buildCsr, type Csr } from '../../../src/model/interactions.ts';

/** A small user × item matrix with two taste groups, so the factors have structure to find. */
function smallMatrix(users = 60, items = 40, perUser = 8, seed = 7): Csr {
  const random = seededRandom(seed);
  const u: number[] = [];
  const i: number[] = [];
  const w: number[] = [];
  for (let user = 0; user < users; user++) {
    const group = user % 2;
    for (let e = 0; e < perUser; e++) {
      const item =
        random() < 0.8 ? group * (items / 2) + Math.floor(random() * (items / 2)) : Math.floor(random() * items);
      u.push(user);
      i.push(item);
      w.push(1 + Math.floor(random() * 3));
    }
  }
  return buildCsr(users, items, Int32Array.from(u), Int32Array.from(i), Float32Array.from(w));
}

function userRow(m: Csr, u: number): { items: Int32Array; weights: Float32Array } {
  const from = m.indptr[u] as number;
  const to = m.indptr[u + 1] as number;
  return { items: m.indices.subarray(from, to), weights: m.data.subarray(from, to) };
}

describe('ALS', () => {
  it.each([
    ['exact solves', 0],
    ['3 CG steps', 3],
  ])('lowers the loss every iteration with %s', async (_label, cgSteps) => {
    const trainer = new AlsTrainer(smallMatrix(), { factors: 8, lambda: 0.1, alpha: 5, cgSteps }, inProcessExecutor());
    await trainer.iterate(1);
    const losses = [trainer.loss()];

    for (let it = 0; it < 6; it++) {
      await trainer.iterate(1);
      losses.push(trainer.loss());
    }

    for (let it = 1; it < losses.length; it++) expect(losses[it]).toBeLessThan(losses[it - 1] as number);
  });

  // Fold-in is the exact solve; the trained vector matches it to 5 decimals when training solved that row exactly
  // too (Cholesky, or the short-row kernel solve) or ran CG to convergence (k = 6 steps suffice in exact
  // arithmetic; 64 leave only rounding, ~1e-7 in the float32 factors).
  it.each([
    ['the exact user step', 0, 8],
    ['a CG user step run to convergence on rows too long for the short-row solve', 64, 30],
    ['a 3-step CG user step, which solves short rows (at most k entries) exactly', 3, 6],
  ])('fold-in gives a trained shopper the vector of %s', async (_label, cgSteps, perUser) => {
    const matrix = smallMatrix(60, 40, perUser);
    const factors = 6;
    const trainer = new AlsTrainer(
      matrix,
      { factors, lambda: 0.5, alpha: 3, confidence: 'log', epsilon: 1, cgSteps },
      inProcessExecutor(),
    );
    await trainer.iterate(3);
    await trainer.solveUsers();
    const model = trainer.model();

    for (const u of [0, 1, 17, 59]) {
      const { items, weights } = userRow(matrix, u);
      const folded = foldIn(model, items, weights);
      const trained = model.userFactors.subarray(u * factors, (u + 1) * factors);
      for (let f = 0; f < factors; f++) expect(folded[f]).toBeCloseTo(trained[f] as number, 5);
    }
  });

  it('gives a shopper with no history the zero vector', () => {
    const model = {
      factors: 2,
      lambda: 1,
      alpha: 1,
      confidence: 'linear' as const,
      epsilon: 1,
      itemFactors: Float32Array.from([1, 0, 0, 1]),
      itemGram: Float64Array.from([1, 0, 0, 1]),
    };

    expect(Array.from(foldIn(model, [], []))).toEqual([0, 0]);
  });

  it('solves a one-item shopper by hand: (YᵀY + λI + cm1·y yᵀ) x = c·y', () => {
    // Items y0 = (1, 0), y1 = (0, 2): YᵀY = diag(1, 4). Shopper has item 1 with weight 1, alpha 2 → c = 3.
    // A = diag(1 + 1, 4 + 1 + 2·4) = diag(2, 13), b = 3·(0, 2) → x = (0, 6/13).
    const model = {
      factors: 2,
      lambda: 1,
      alpha: 2,
      confidence: 'linear' as const,
      epsilon: 1,
      itemFactors: Float32Array.from([1, 0, 0, 2]),
      itemGram: Float64Array.from([1, 0, 0, 4]),
    };

    const x = foldIn(model, [1], [1]);

    expect(x[0]).toBeCloseTo(0, 12);
    expect(x[1]).toBeCloseTo(6 / 13, 6);
  });

  describe('on worker threads', () => {
    let pool: AlsExecutor;
    const fallbacks: string[] = [];
    beforeAll(async () => {
      pool = await createAlsExecutor(2, (why) => fallbacks.push(why));
    });
    afterAll(async () => {
      await pool.close();
    });

    it('starts two workers and matches the one-thread factors', async () => {
      const matrix = smallMatrix(200, 50, 10, 3);
      const params = { factors: 8, cgSteps: 3, seed: 5 };
      const single = new AlsTrainer(matrix, params, inProcessExecutor());
      const threaded = new AlsTrainer(matrix, params, pool);

      await single.iterate(3);
      await threaded.iterate(3);

      expect(fallbacks).toEqual([]);
      expect(pool.threads).toBe(2);
      for (let i = 0; i < single.itemFactors.length; i += 7) {
        expect(threaded.itemFactors[i]).toBeCloseTo(single.itemFactors[i] as number, 4);
      }
    });
  });
});
