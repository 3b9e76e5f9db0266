// Fitting any model by name, and scoring it under the protocol: rank every item for each user with held-out
// items, excluding what the user has in training, and average the metrics. Pure computation, no I/O.

import { alsRecommender, trainAls } from './als.ts';
import type { AlsExecutor } from './als-pool.ts';
import { fitCooccurrence } from './cooccurrence.ts';
import { fitEase } from './ease.ts';
import type { EaseExecutor } from './ease-pool.ts';
import {
  type Csr,
  eventWeights,
  historyAges,
  type InteractionLog,
  transposeCsr,
  userItemMatrix,
  type WeightingParams,
} from './interactions.ts';
import { fitItemSimilarity } from './item-similarity.ts';
import { popularMask, RankingMetrics, type RankingSummary, topK } from './metrics.ts';
import { fitPopularity } from './popularity.ts';
import type { Recommender } from './recommender.ts';

/** The model names `fitModel` knows. */
export const MODEL_NAMES = ['popularity', 'cooccurrence', 'itemknn', 'ease', 'als'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Loose JSON parameters: each model reads the keys it knows (plus the weighting keys) and ignores the rest. */
export type ModelParams = Readonly<Record<string, unknown>>;

/** Training data for one fit: the log, its dimensions and its event type names. */
export interface TrainingData {
  readonly log: InteractionLog;
  readonly users: number;
  readonly items: number;
  readonly typeNames: readonly string[];
}

export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

function weightingOf(params: ModelParams): WeightingParams {
  return {
    typeWeights: params.typeWeights as Record<string, number> | undefined,
    defaultTypeWeight: params.defaultTypeWeight as number | undefined,
    halfLifeDays: params.halfLifeDays as number | undefined,
    useValue: params.useValue as boolean | undefined,
  };
}

/** A user → item matrix with, per entry, the days before the user's newest event they last touched the item. */
export interface HistoryMatrix extends Csr {
  readonly ages: Float32Array;
}

/**
 * Ages per log: a matrix's entries come in the same order whatever the weighting (by user, then first touch),
 * so every history of one log shares them, and an ALS search that builds a matrix per trial computes them
 * once. Weak: a log's ages go with the log.
 */
const agesByLog = new WeakMap<InteractionLog, Float32Array>();

/** The user → item matrix of summed event weights under the params' weighting, with its entries' ages. */
export function historyMatrix(data: TrainingData, params: ModelParams): HistoryMatrix {
  const weights = eventWeights(data.log, data.typeNames, weightingOf(params));
  const matrix = userItemMatrix(data.log, data.users, data.items, weights);
  let ages = agesByLog.get(data.log);
  if (!ages) {
    ages = historyAges(data.log, matrix);
    agesByLog.set(data.log, ages);
  }
  return { ...matrix, ages };
}

/** Where the heavy fits run: ALS half-steps and EASE solves, each on its worker threads. */
export interface Executors {
  readonly als: AlsExecutor;
  readonly ease: EaseExecutor;
}

/** Fits `name` on `data`; ALS and EASE run on their executors (the similarity models are cheap). */
export async function fitModel(
  name: ModelName,
  params: ModelParams,
  data: TrainingData,
  executors: Executors,
): Promise<{ recommender: Recommender; history: HistoryMatrix }> {
  const history = historyMatrix(data, params);
  switch (name) {
    case 'popularity':
      return { recommender: fitPopularity(history), history };
    case 'cooccurrence':
      return { recommender: fitCooccurrence(history, transposeCsr(history), params), history };
    case 'itemknn':
      return { recommender: fitItemSimilarity('itemknn', history, transposeCsr(history), params), history };
    case 'ease':
      return { recommender: await fitEase(history, params, executors.ease), history };
    case 'als': {
      const model = await trainAls(history, params, executors.als);
      return { recommender: alsRecommender(model), history };
    }
  }
}

/**
 * At most `max` of `pool`, spread evenly over it (deterministic: the same pool gives the same sample), so a
 * sample of users keeps the mix of old and new shoppers that ids in order of first appearance have.
 */
export function evenSample(pool: readonly number[], max: number): number[] {
  const step = Math.max(1, pool.length / max);
  const out: number[] = [];
  for (let at = 0; Math.floor(at) < pool.length && out.length < max; at += step)
    out.push(pool[Math.floor(at)] as number);
  return out;
}

/** The users with at least one held-out item, in id order. */
export function usersWithTestItems(testIndptr: Int32Array): number[] {
  const users: number[] = [];
  for (let u = 0; u + 1 < testIndptr.length; u++)
    if ((testIndptr[u + 1] as number) > (testIndptr[u] as number)) users.push(u);
  return users;
}

/**
 * Evaluates `recommender` for every user with held-out items: their training history is `history` row u (with
 * its entries' ages, when it has them), their held-out items `testItems[testIndptr[u]..testIndptr[u+1])`.
 * `catalogue` is the coverage denominator; `users`, when given, restricts the evaluation to those users (a
 * validation sample). The share of top-k slots taken by the 1 % most popular items is measured against the
 * popularity in `history`.
 */
export function evaluateRecommender(
  recommender: Recommender,
  history: Csr & { readonly ages?: Float32Array },
  testIndptr: Int32Array,
  testItems: Int32Array,
  k: number,
  catalogue = history.cols,
  users: ArrayLike<number> | undefined = undefined,
): RankingSummary {
  const popular = popularMask(history.indices, history.indptr[history.rows] as number, history.cols);
  const metrics = new RankingMetrics(k, catalogue, popular);
  const scores = new Float32Array(history.cols);
  const ranked = new Int32Array(k);
  const count = users ? users.length : testIndptr.length - 1;
  for (let at = 0; at < count; at++) {
    const u = users ? (users[at] as number) : at;
    const from = testIndptr[u] as number;
    const to = testIndptr[u + 1] as number;
    if (from === to) continue;
    const h0 = u < history.rows ? (history.indptr[u] as number) : 0;
    const h1 = u < history.rows ? (history.indptr[u + 1] as number) : 0;
    const items = history.indices.subarray(h0, h1);
    recommender.score(items, history.data.subarray(h0, h1), scores, history.ages?.subarray(h0, h1));
    for (let i = 0; i < items.length; i++) scores[items[i] as number] = Number.NEGATIVE_INFINITY;
    const n = topK(scores, k, ranked);
    metrics.add(ranked.subarray(0, n), new Set(testItems.subarray(from, to)));
  }
  return metrics.summary();
}

/**
 * Held-out items per user from a separate test log: distinct items in order of first appearance, minus those
 * the user already has in training (repeat purchases are a separate use case, measured apart).
 */
export function heldOutFromLog(
  test: InteractionLog,
  users: number,
  history: Csr,
): {
  testIndptr: Int32Array;
  testItems: Int32Array;
} {
  const perUser: number[][] = Array.from({ length: users }, () => []);
  const seen = new Set<number>();
  const order = Array.from(test.user.keys()).sort(
    (a, b) => (test.time[a] as number) - (test.time[b] as number) || a - b,
  );
  const owned = new Set<number>();
  for (const row of order) {
    const u = test.user[row] as number;
    const i = test.item[row] as number;
    const key = u * history.cols + i;
    if (seen.has(key)) continue;
    seen.add(key);
    perUser[u]?.push(i);
  }
  const testIndptr = new Int32Array(users + 1);
  const flat: number[] = [];
  for (let u = 0; u < users; u++) {
    owned.clear();
    if (u < history.rows) {
      for (let e = history.indptr[u] as number; e < (history.indptr[u + 1] as number); e++) {
        owned.add(history.indices[e] as number);
      }
    }
    for (const i of perUser[u] ?? []) if (!owned.has(i)) flat.push(i);
    testIndptr[u + 1] = flat.length;
  }
  return { testIndptr, testItems: Int32Array.from(flat) };
}
