import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/model/als.ts';
import { inProcessExecutor } from '../../../src/model/als-pool.ts';
import { inProcessEaseExecutor } from '../../../src/model/ease-pool.ts';
import { type Executors, evaluateRecommender, type TrainingData } from '../../../src/model/evaluation.ts';
import { selectRows } from '../../../src/model/interactions.ts';
import { type Choice, FAMILIES, fitChoice, type Selection, selectModel } from '../../../src/model/selection.ts';
import { temporalSplit } from '../../../src/model/split.ts';
import { purchaseLog } from '../../helpers/interaction-log.ts';

const ITEMS = 600;
const USERS = 800;

/** Purchases of `item[r]` by `user[r]` at `time[r]`. */
const purchasesOf = (user: number[], item: number[], time: number[]) =>
  purchaseLog(user.map((u, r) => [u, item[r] as number, time[r] as number] as const));

/**
 * Shoppers who buy complementary pairs: item 2p always goes with item 2p+1. Each shopper first buys one item
 * of each of five pairs (pairs drawn with a popularity skew), then the partners in the same order. The
 * partners of the last pairs are what the temporal hold-out keeps, and only an item-to-item model can name
 * a partner exactly: the structure has no low-rank shortcut. `holdout` replaces what the held-out events
 * are (the training part stays the same): 'partners' as built, or 'popular', the five most popular items.
 */
function pairShoppers(holdout: 'partners' | 'popular'): {
  data: TrainingData;
  train: TrainingData;
  split: ReturnType<typeof temporalSplit>;
} {
  const random = seededRandom(7);
  const user: number[] = [];
  const item: number[] = [];
  const time: number[] = [];
  for (let u = 0; u < USERS; u++) {
    const pairs = new Set<number>();
    while (pairs.size < 5) pairs.add(Math.floor((ITEMS / 2) * random() ** 2));
    const order = [...pairs];
    const firsts = order.map((p) => 2 * p + (random() < 0.5 ? 0 : 1));
    const seconds = firsts.map((i) => i ^ 1);
    [...firsts, ...seconds].forEach((i, at) => {
      user.push(u);
      item.push(i);
      time.push(u * 1000 + at);
    });
  }
  const log = purchasesOf(user, item, time);
  const data: TrainingData = { log, users: USERS, items: ITEMS, typeNames: ['purchase'] };
  const split = temporalSplit(log, USERS, ITEMS);
  if (holdout === 'popular') {
    // Items 0..9 are the most popular pairs' items; a shopper's held-out items become popular items they lack.
    const items = new Int32Array(split.testItems.length);
    for (let u = 0; u < USERS; u++) {
      const owned = new Set<number>();
      for (let r = 0; r < user.length; r++) if (user[r] === u) owned.add(item[r] as number);
      let candidate = 0;
      for (let at = split.testIndptr[u] as number; at < (split.testIndptr[u + 1] as number); at++) {
        while (owned.has(candidate)) candidate++;
        items[at] = candidate++;
      }
    }
    split.testItems.set(items);
  }
  return { data, train: { ...data, log: selectRows(log, split.trainRows) }, split };
}

/** A clock that advances one second per reading, so budgets (and so the search) are deterministic. */
function tickingClock(): () => number {
  let t = 0;
  return () => t++;
}

describe('selectModel', () => {
  const executors: Executors = { als: inProcessExecutor(), ease: inProcessEaseExecutor() };
  const partners = pairShoppers('partners');
  const popular = pairShoppers('popular');
  let selection: Selection;
  const holdout = async (choice: Choice, data: typeof partners) => {
    const fitted = await fitChoice(
      choice,
      selection.params.families ? withBlend(choice) : selection.params,
      data.train,
      executors,
      {
        neighbours: 50,
      },
    );
    return evaluateRecommender(fitted.recommender, fitted.history, data.split.testIndptr, data.split.testItems, 10)
      .ndcg;
  };
  const withBlend = (choice: Choice) => {
    const blend = selection.outcomes.find((o) => o.family === 'blend')?.params;
    return choice === 'blend' && blend ? { ...selection.params, blend } : selection.params;
  };

  beforeAll(async () => {
    selection = await selectModel(partners.train, executors, {
      search: 'random',
      budgetSeconds: 200,
      seed: 1,
      now: tickingClock(),
    });
  }, 120_000);

  afterAll(async () => {
    await executors.als.close();
  });

  it('when one family truly wins on the data then selection picks it, and it is best on the hold-out too', async () => {
    const scores = new Map<Choice, number>();
    for (const choice of [...FAMILIES, 'blend'] as const) scores.set(choice, await holdout(choice, partners));
    const best = Math.max(...scores.values());

    expect(['ease', 'itemknn', 'blend']).toContain(selection.chosen);
    // EASE, item-kNN and their blend all name partners (within a point of NDCG); ALS cannot.
    expect(scores.get(selection.chosen)).toBeGreaterThan(best - 0.01);
    expect(scores.get(selection.chosen)).toBeGreaterThan((scores.get('als') as number) + 0.1);
  });

  it('when trials ran then each family and the blend recorded params, rung, validation score and seconds', () => {
    const families = new Set(selection.trials.map((t) => t.family));

    expect(families).toEqual(new Set(['als', 'ease', 'itemknn', 'blend']));
    for (const trial of selection.trials) {
      expect(trial).toMatchObject({ params: expect.any(Object), rung: expect.any(Number), score: expect.any(Number) });
      expect(trial.seconds).toBeGreaterThanOrEqual(0);
    }
  });

  it('when the budget runs out in the blend then its grid stops, pairs ranked first, and a blend still serves', () => {
    // The ticking clock makes every reading a second, so the families' searches spend the budget and the blend
    // starts with little of it left (its share is what the time figures are measured against, in the quality
    // benchmark).
    const blendTrials = selection.trials.filter((t) => t.family === 'blend');
    const fullGrid = 3 * 9 + 36;
    const pairs = blendTrials.filter((t) => Object.values(t.params).filter((w) => w !== 0).length === 2);

    expect(blendTrials.length).toBeGreaterThan(0);
    expect(blendTrials.length).toBeLessThan(fullGrid);
    expect(blendTrials.every((t) => Object.values(t.params).filter((w) => w !== 0).length >= 2)).toBe(true);
    expect(pairs.length).toBe(blendTrials.length);
    expect(selection.outcomes.map((o) => o.family)).toContain('blend');
  });

  it('when the hold-out would pick another family then the selection is unchanged: it never reads the hold-out', async () => {
    const again = await selectModel(popular.train, executors, {
      search: 'random',
      budgetSeconds: 200,
      seed: 1,
      now: tickingClock(),
    });
    const onPopularHoldout = new Map<Choice, number>();
    for (const choice of [...FAMILIES, 'blend'] as const) onPopularHoldout.set(choice, await holdout(choice, popular));
    const holdoutWinner = [...onPopularHoldout.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];

    expect(holdoutWinner).not.toBe(selection.chosen);
    expect(again.chosen).toBe(selection.chosen);
    expect(again.params).toEqual(selection.params);
    expect(again.trials.map((t) => t.score)).toEqual(selection.trials.map((t) => t.score));
  }, 120_000);
});

describe('selectModel when shoppers’ tastes move', () => {
  const executors: Executors = { als: inProcessExecutor(), ease: inProcessEaseExecutor() };
  const CLUSTERS = 30;
  const SIZE = 20;
  const DAY = 86_400_000;

  /**
   * 30 clusters of 20 items. Each shopper buys 5 items of one cluster in their first month, then, a year later,
   * 8 of another: the hold-out keeps the last of those, so the items bought lately say what comes next and the
   * old cluster's other items only crowd the list.
   */
  function driftingShoppers() {
    const random = seededRandom(11);
    const user: number[] = [];
    const item: number[] = [];
    const time: number[] = [];
    const users = 900;
    for (let u = 0; u < users; u++) {
      const old = Math.floor(random() * CLUSTERS);
      const now = (old + 1 + Math.floor(random() * (CLUSTERS - 1))) % CLUSTERS;
      const pick = (cluster: number, count: number, fromDay: number) => {
        const chosen = new Set<number>();
        while (chosen.size < count) chosen.add(cluster * SIZE + Math.floor(random() * SIZE));
        [...chosen].forEach((i, at) => {
          user.push(u);
          item.push(i);
          time.push((fromDay + at) * DAY);
        });
      };
      pick(old, 5, 0);
      pick(now, 8, 365);
    }
    const log = purchasesOf(user, item, time);
    const data: TrainingData = { log, users, items: CLUSTERS * SIZE, typeNames: ['purchase'] };
    const split = temporalSplit(log, users, CLUSTERS * SIZE);
    return { train: { ...data, log: selectRows(log, split.trainRows) }, split };
  }

  afterAll(async () => {
    await executors.als.close();
  });

  it('when recent items predict the next ones then an item-to-item choice serves with a half-life, and the hold-out agrees', async () => {
    const { train, split } = driftingShoppers();
    const selection = await selectModel(train, executors, {
      search: 'random',
      budgetSeconds: 0,
      families: ['itemknn'],
      now: tickingClock(),
    });
    const holdout = async (historyHalfLifeDays: number) => {
      const params = { ...selection.params, historyHalfLifeDays };
      const fitted = await fitChoice('itemknn', params, train, executors, { neighbours: 50 });
      return evaluateRecommender(fitted.recommender, fitted.history, split.testIndptr, split.testItems, 10).ndcg;
    };

    expect(selection.params.historyHalfLifeDays).toBeGreaterThan(0);
    expect(await holdout(selection.params.historyHalfLifeDays ?? 0)).toBeGreaterThan((await holdout(0)) + 0.05);
  }, 60_000);
});
