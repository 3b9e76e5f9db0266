import { describe, expect, it } from 'vitest';
import {
  type ParamSpace,
  type SearchKind,
  type SearchParams,
  searchParams,
  type TrialRunner,
} from '../../../src/model/search.ts';

const SPACE: ParamSpace = {
  x: { kind: 'uniform', lo: 0, hi: 1 },
  y: { kind: 'log', lo: 0.01, hi: 100 },
  mode: { kind: 'choice', values: ['a', 'b'] },
};

/** A smooth objective with its optimum at x = 0.3, y = 1, mode b; higher rungs see it less noisily. */
function objective(params: SearchParams): number {
  const x = params.x as number;
  const y = Math.log10(params.y as number);
  return 1 - (x - 0.3) ** 2 - 0.1 * y ** 2 - (params.mode === 'b' ? 0 : 0.05);
}

/** A runner whose every fit costs one tick of a fake clock, so budgets are counted in fits. */
function countingRunner(rungs: number): { runner: TrialRunner; clock: () => number; runs: number[] } {
  let ticks = 0;
  const runs = Array.from({ length: rungs }, () => 0);
  return {
    runs,
    clock: () => ticks,
    runner: {
      rungs,
      start(params) {
        let disposed = false;
        return {
          async run(rung) {
            // A real trial frees its fitted state on dispose: running it afterwards is a bug of the search.
            if (disposed) throw new Error('run after dispose');
            ticks++;
            runs[rung] = (runs[rung] as number) + 1;
            return objective(params) - 0.02 * (rungs - 1 - rung);
          },
          dispose() {
            disposed = true;
          },
        };
      },
    },
  };
}

describe('searchParams', () => {
  it('when a bracket runs then the best third of each rung goes on and the result is a top-rung fit', async () => {
    const { runner, clock, runs } = countingRunner(3);

    const result = await searchParams(SPACE, runner, { kind: 'random', budgetSeconds: 13, seed: 3, now: clock });

    // One bracket: 9 configurations at rung 0, 3 at rung 1, 1 at rung 2 (13 fits, the budget).
    expect(runs).toEqual([9, 3, 1]);
    const top = result.trials.filter((t) => t.rung === 2);
    expect(top).toHaveLength(1);
    expect(result.params).toEqual(top[0]?.params);
    const rung0 = result.trials.filter((t) => t.rung === 0).sort((a, b) => b.score - a.score);
    const promoted = result.trials.filter((t) => t.rung === 1).map((t) => t.params);
    expect(promoted).toEqual(expect.arrayContaining(rung0.slice(0, 3).map((t) => t.params)));
  });

  it('when many brackets run then no trial is run after it was freed', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { runner, clock } = countingRunner(3);

      await expect(
        searchParams(SPACE, runner, { kind: 'bayes', budgetSeconds: 60, seed, now: clock }),
      ).resolves.toBeDefined();
    }
  });

  it('when the budget runs out before any top-rung fit then the best configuration still gets one', async () => {
    const { runner, clock, runs } = countingRunner(3);

    const result = await searchParams(SPACE, runner, { kind: 'random', budgetSeconds: 4, seed: 1, now: clock });

    expect(runs[0]).toBe(4);
    expect(runs[2]).toBe(1);
    expect(result.trials.at(-1)?.rung).toBe(2);
  });

  it('when a full fit costs more than the partial ones then its cost is kept back and the search ends within budget', async () => {
    let ticks = 0;
    const cost = [1, 3, 9];
    const runner: TrialRunner = {
      rungs: 3,
      relativeCost: [1 / 9, 1 / 3, 1],
      start: (params) => ({
        async run(rung) {
          ticks += cost[rung] as number;
          return objective(params);
        },
      }),
    };

    const result = await searchParams(SPACE, runner, { kind: 'random', budgetSeconds: 30, now: () => ticks });

    expect(result.trials.find((t) => t.rung === 2)?.params).toEqual(result.params);
    expect(ticks).toBeLessThanOrEqual(30);
  });

  it('when warm-started then the previous best is the first configuration tried', async () => {
    const { runner, clock } = countingRunner(1);
    const previous = { x: 0.31, y: 1.2, mode: 'b' };

    const result = await searchParams(SPACE, runner, {
      kind: 'bayes',
      budgetSeconds: 5,
      warmStart: previous,
      now: clock,
    });

    expect(result.trials[0]?.params).toEqual(previous);
  });

  it('when searching by grid then configurations are grid points and none repeats', async () => {
    const { runner, clock } = countingRunner(1);

    const result = await searchParams(SPACE, runner, { kind: 'grid', budgetSeconds: 100, now: clock });

    // 3 levels × 3 levels × 2 choices, each once, then the exhausted grid ends the search.
    expect(result.trials).toHaveLength(18);
    expect(new Set(result.trials.map((t) => JSON.stringify(t.params))).size).toBe(18);
  });

  it('when the TPE surrogate guides the search then it finds a better optimum than random search in the same fits', async () => {
    const best = async (kind: SearchKind, seed: number) => {
      const { runner, clock } = countingRunner(1);
      return (await searchParams(SPACE, runner, { kind, budgetSeconds: 40, seed, now: clock })).score;
    };
    let bayes = 0;
    let random = 0;

    for (let seed = 1; seed <= 8; seed++) {
      bayes += await best('bayes', seed);
      random += await best('random', seed);
    }

    expect(bayes).toBeGreaterThan(random);
  });
});
