// Model selection on the shop's own data: a validation split is cut from the training data it is given (the
// caller's hold-out never reaches this file), each family is tuned within its share of a time budget, a blend
// of the tuned families gets weights tuned on the same validation users, and the best validation NDCG@k wins.
// `fitChoice` then fits the winner for real, in the form that serves (a neighbour table for item-to-item ones).
import { type AlsModel, AlsTrainer, alsRecommender, DEFAULT_ALS_PARAMS } from './als.ts';
import { fitEase } from './ease.ts';
import {
  type Executors,
  evaluateRecommender,
  evenSample,
  type HistoryMatrix,
  historyMatrix,
  type ModelParams,
  type TrainingData,
  usersWithTestItems,
} from './evaluation.ts';
import { type Csr, selectRows, transposeCsr } from './interactions.ts';
import { fitItemSimilarity } from './item-similarity.ts';
import { alsItemToItem, blendItemToItem, neighbourTableOf, tableRecommender } from './item-to-item.ts';
import { popularMask, RankingMetrics, type RankingSummary, topK } from './metrics.ts';
import type { NeighbourTable } from './neighbour-table.ts';
import type { ItemToItemModel, Recommender } from './recommender.ts';
import {
  type ParamSpace,
  type SearchKind,
  type SearchParams,
  searchParams,
  type TrialHandle,
  type TrialRecord,
  type TrialRunner,
} from './search.ts';
import { temporalSplit } from './split.ts';

/** The families selection tunes, and what can win: one of them or a blend. */
export const FAMILIES = ['als', 'ease', 'itemknn'] as const;
export type Family = (typeof FAMILIES)[number];
export const CHOICES = [...FAMILIES, 'blend'] as const;
export type Choice = (typeof CHOICES)[number];

export function isFamily(value: string): value is Family {
  return (FAMILIES as readonly string[]).includes(value);
}

/** Blend weights per family (scale included: a weight multiplies that family's raw scores). */
export type BlendWeights = Partial<Record<Family, number>>;

/** What a selection chose: the winner, each family's params, and the blend's weights when it won. */
export interface ChoiceParams {
  readonly families: Partial<Record<Family, ModelParams>>;
  readonly blend?: BlendWeights;
  /** An item-to-item choice's history recency (see HISTORY_HALF_LIVES); absent or 0: every item weighs 1. */
  readonly historyHalfLifeDays?: number;
}

/** A trial as stored with a model version. */
export interface StoredTrial extends TrialRecord {
  readonly family: Choice;
}

export interface FamilyOutcome {
  readonly family: Choice;
  readonly params: ModelParams;
  /** The history recency an item-to-item family serves with (chosen on the search users). */
  readonly historyHalfLifeDays?: number;
  /** On the validation users set apart for selection (no search saw them), as it would serve. */
  readonly validation: RankingSummary;
  readonly seconds: number;
}

export interface Selection {
  readonly chosen: Choice;
  readonly params: ChoiceParams;
  readonly validation: RankingSummary;
  readonly outcomes: FamilyOutcome[];
  readonly trials: StoredTrial[];
  readonly seconds: number;
  /** Events and users the validation used (inner training part, validation users). */
  readonly validationUsers: number;
}

export interface SelectionOptions {
  readonly search: SearchKind;
  /**
   * Seconds for the whole selection: the validation split, every family's search and served validation, and
   * the blend (each family gets an equal share of what is left once BLEND_SHARE is held back for the blend).
   * 0: no search, one fit per family.
   */
  readonly budgetSeconds: number;
  readonly seed?: number;
  readonly k?: number;
  readonly families?: readonly Family[];
  /** Each family's search starts from these (the previous version's best). */
  readonly warmStart?: Partial<Record<Family, ModelParams>>;
  /** Families whose params are fixed: one full fit each, no search. */
  readonly pinned?: Partial<Record<Family, ModelParams>>;
  /** Weighting params every family's history matrix is built with (event-type weights…). */
  readonly weighting?: ModelParams;
  /** Users the validation scores (an even sample of those with validation items). */
  readonly maxValidationUsers?: number;
  /** EASE's catalogue limit (default EASE_MAX_ITEMS). */
  readonly easeMaxItems?: number;
  /**
   * Neighbours per item an item-to-item version serves from (MODEL_NEIGHBOURS): item-to-item candidates are
   * compared as they would serve, from their top-N table, not from their full matrix. Default 200.
   */
  readonly neighbours?: number;
  readonly now?: () => number;
  readonly log?: (message: string) => void;
}

/** The search spaces: wide, generic ranges (nothing here was fitted to a data set). */
export const SEARCH_SPACES: Readonly<Record<Family, ParamSpace>> = {
  als: {
    factors: { kind: 'choice', values: [32, 64, 128] },
    lambda: { kind: 'log', lo: 0.01, hi: 50 },
    alpha: { kind: 'log', lo: 0.5, hi: 50 },
    confidence: { kind: 'choice', values: ['linear', 'log'] },
    epsilon: { kind: 'log', lo: 0.1, hi: 10 },
    halfLifeDays: { kind: 'choice', values: [0, 90, 365] },
  },
  ease: {
    lambda: { kind: 'log', lo: 5, hi: 5000 },
  },
  itemknn: {
    neighbours: { kind: 'choice', values: [50, 100, 200, 400] },
    alpha: { kind: 'uniform', lo: 0, hi: 1 },
    shrink: { kind: 'log', lo: 0.1, hi: 100 },
    userPenalty: { kind: 'uniform', lo: 0, hi: 1 },
    power: { kind: 'uniform', lo: 1, hi: 3 },
  },
};

/**
 * History recencies an item-to-item choice is validated with, in days: a history item's weight halves for every
 * that many days it was last touched before the shopper's newest event (0: all weigh 1). A temporal split
 * rewards recent tastes when a shop has them; the validation decides whether it does. Chosen after the
 * search, on the served table: it changes how a table is read, not what is fitted. Wide, generic values.
 */
export const HISTORY_HALF_LIVES: readonly number[] = [0, 7, 30, 90, 365];

/** The first candidate of a search without a previous version: each library's own defaults. */
const LIBRARY_DEFAULTS: Readonly<Record<Family, ModelParams>> = {
  als: {
    factors: DEFAULT_ALS_PARAMS.factors,
    lambda: DEFAULT_ALS_PARAMS.lambda,
    alpha: DEFAULT_ALS_PARAMS.alpha,
    confidence: DEFAULT_ALS_PARAMS.confidence,
    epsilon: DEFAULT_ALS_PARAMS.epsilon,
  },
  ease: { lambda: 300 },
  itemknn: {},
};

/** ALS iterations per rung: trials start short and the promising ones continue. */
const ALS_RUNGS = [3, 8, 15] as const;
/** EASE catalogue fractions per rung (of its full item count): the solve costs n³, so 1/64, 1/8, 1. */
const EASE_RUNGS = [0.25, 0.5, 1] as const;
const BLEND_STEP = 0.1;
/**
 * The share of the selection budget held back for the blend (scoring every family on the validation users,
 * its weight grid, its served validation), so the families' searches leave it room and the selection as a
 * whole ends near its budget. A share rather than an estimate: the blend's cost grows with the catalogue and
 * the validation users like the searches' trials do. The grid stops at the budget, keeping the best so far.
 */
const BLEND_SHARE = 0.1;

/** The validation the searches score on: an inner split of the training data and a sample of its users. */
interface Validation {
  readonly train: TrainingData;
  readonly testIndptr: Int32Array;
  readonly testItems: Int32Array;
  /** The users the searches (and the blend's weights) are tuned on. */
  readonly users: Int32Array;
  /**
   * Other users with validation items, that no search saw: the candidates are compared on them, so the one
   * tuned hardest (the blend, the best of dozens of weight vectors) does not win on its tuning's optimism.
   * The same as `users` when the data has too few shoppers to set any apart.
   */
  readonly selectUsers: Int32Array;
  readonly k: number;
}

function validationOf(data: TrainingData, k: number, maxUsers: number): Validation {
  const split = temporalSplit(data.log, data.users, data.items);
  const withItems = usersWithTestItems(split.testIndptr);
  // Every other user tunes, the rest select (each side at most maxUsers, sampled evenly).
  const tune = evenSample(
    withItems.filter((_, at) => at % 2 === 0),
    maxUsers,
  );
  const rest = evenSample(
    withItems.filter((_, at) => at % 2 === 1),
    maxUsers,
  );
  const users = withItems.length >= 20 ? tune : withItems;
  const selectUsers = withItems.length >= 20 ? rest : withItems;
  return {
    train: { ...data, log: selectRows(data.log, split.trainRows) },
    testIndptr: split.testIndptr,
    testItems: split.testItems,
    users: Int32Array.from(users),
    selectUsers: Int32Array.from(selectUsers),
    k,
  };
}

/** The same validation, scored on the users set apart for selection. */
function selecting(validation: Validation): Validation {
  return { ...validation, users: validation.selectUsers };
}

function validate(validation: Validation, recommender: Recommender, history: HistoryMatrix): RankingSummary {
  return evaluateRecommender(
    recommender,
    history,
    validation.testIndptr,
    validation.testItems,
    validation.k,
    history.cols,
    validation.users,
  );
}

/**
 * An item-to-item model scored as it serves: from its top-`neighbours` table, with the history recency of
 * HISTORY_HALF_LIVES that scores best on the search users; the summary is on the users set apart for selection,
 * which did not choose it.
 */
function validateTable(
  validation: Validation,
  model: ItemToItemModel,
  history: HistoryMatrix,
  neighbours: number,
): { summary: RankingSummary; historyHalfLifeDays: number } {
  const table = neighbourTableOf(model, validation.train.items, neighbours);
  let best = { ndcg: Number.NEGATIVE_INFINITY, historyHalfLifeDays: 0 };
  for (const historyHalfLifeDays of HISTORY_HALF_LIVES) {
    const { ndcg } = validate(validation, tableRecommender(table, model.name, historyHalfLifeDays), history);
    if (ndcg > best.ndcg) best = { ndcg, historyHalfLifeDays };
  }
  const served = tableRecommender(table, model.name, best.historyHalfLifeDays);
  return { summary: validate(selecting(validation), served, history), historyHalfLifeDays: best.historyHalfLifeDays };
}

const asModelParams = (params: SearchParams, extra: ModelParams): ModelParams => ({ ...extra, ...params });

/** The best full-fidelity fit a runner has seen, kept for the blend and the outcome. */
interface BestFit {
  params: ModelParams;
  summary: RankingSummary;
  model: ItemToItemModel;
  serving: Recommender;
  history: HistoryMatrix;
}

type FamilyRunner = TrialRunner & { best?: BestFit };

function alsRunner(validation: Validation, executors: Executors, weighting: ModelParams): FamilyRunner {
  const runner: FamilyRunner = {
    rungs: ALS_RUNGS.length,
    relativeCost: ALS_RUNGS.map((n) => n / (ALS_RUNGS[ALS_RUNGS.length - 1] as number)),
    start(search) {
      const params = asModelParams(search, weighting);
      const history = historyMatrix(validation.train, params);
      let trainer: AlsTrainer | undefined = new AlsTrainer(history, params, executors.als);
      const handle: TrialHandle = {
        async run(rung) {
          if (!trainer) throw new Error('ALS trial run after it was disposed');
          const last = rung === ALS_RUNGS.length - 1;
          const pinnedIterations = typeof params.iterations === 'number' ? params.iterations : undefined;
          const target = last && pinnedIterations ? pinnedIterations : (ALS_RUNGS[rung] as number);
          await trainer.iterate(Math.max(0, target - trainer.iterationsDone));
          const model: AlsModel = trainer.model();
          const serving = alsRecommender(model);
          const summary = validate(validation, serving, history);
          if (last && (!runner.best || summary.ndcg > runner.best.summary.ndcg)) {
            // Keep a copy: the trainer's buffers go when the trial is disposed.
            const copy: AlsModel = {
              ...model,
              itemFactors: model.itemFactors.slice(),
              userFactors: new Float32Array(0),
              itemGram: model.itemGram.slice(),
            };
            runner.best = {
              params: { ...params, iterations: target },
              summary,
              model: alsItemToItem(copy),
              serving: alsRecommender(copy),
              history,
            };
          }
          return summary.ndcg;
        },
        dispose() {
          trainer = undefined;
        },
      };
      return handle;
    },
  };
  return runner;
}

function easeRunner(
  validation: Validation,
  executors: Executors,
  weighting: ModelParams,
  maxItems: number | undefined,
): FamilyRunner {
  const history = historyMatrix(validation.train, weighting);
  const full = Math.min(maxItems ?? Number.POSITIVE_INFINITY, validation.train.items);
  const runner: FamilyRunner = {
    rungs: EASE_RUNGS.length,
    relativeCost: EASE_RUNGS.map((f) => f ** 3),
    start(search) {
      const params = asModelParams(search, {});
      return {
        async run(rung) {
          const cap = Math.max(1, Math.ceil(full * (EASE_RUNGS[rung] as number)));
          const model = await fitEase(history, { ...params, maxItems: cap }, executors.ease);
          const summary = validate(validation, model, history);
          if (rung === EASE_RUNGS.length - 1 && (!runner.best || summary.ndcg > runner.best.summary.ndcg)) {
            runner.best = {
              params: { ...params, ...(maxItems ? { maxItems } : {}) },
              summary,
              model,
              serving: model,
              history,
            };
          }
          return summary.ndcg;
        },
      };
    },
  };
  return runner;
}

function itemknnRunner(validation: Validation, weighting: ModelParams): FamilyRunner {
  const history = historyMatrix(validation.train, weighting);
  const itemUsers = transposeCsr(history);
  const runner: FamilyRunner = {
    rungs: 1,
    start(search) {
      const params = asModelParams(search, {});
      return {
        async run() {
          const model = fitItemSimilarity('itemknn', history, itemUsers, params);
          const summary = validate(validation, model, history);
          if (!runner.best || summary.ndcg > runner.best.summary.ndcg) {
            runner.best = { params, summary, model, serving: model, history };
          }
          return summary.ndcg;
        },
      };
    },
  };
  return runner;
}

/** How many families a subset mask names. */
function bitCount(mask: number): number {
  let n = 0;
  for (let m = mask; m; m &= m - 1) n++;
  return n;
}

/** Points of the simplex over `n` weights with step `step`, every weight > 0 (each part really takes part). */
function simplexPoints(n: number, step: number): number[][] {
  const units = Math.round(1 / step);
  const out: number[][] = [];
  const walk = (prefix: number[], left: number) => {
    if (prefix.length === n - 1) {
      if (left > 0) out.push([...prefix, left].map((u) => u / units));
      return;
    }
    for (let u = 1; u < left; u++) walk([...prefix, u], left - u);
  };
  walk([], units);
  return out;
}

/**
 * Tunes blend weights of the fitted families on the validation users: each family's scores (scaled by their
 * mean spread, so weights compare) are computed once per user, then every weight vector on a simplex grid over
 * every subset of ≥ 2 families is ranked. Records each point as a trial.
 */
function tuneBlend(
  validation: Validation,
  fits: readonly { family: Family; fit: BestFit }[],
  trials: StoredTrial[],
  now: () => number,
  deadline: number,
): { weights: BlendWeights; summary: RankingSummary; seconds: number } | undefined {
  if (fits.length < 2) return undefined;
  const started = now();
  const items = validation.train.items;
  const history = fits[0]?.fit.history as Csr;
  const users = validation.users;
  const cache = fits.map(() => new Float32Array(users.length * items));
  const scales = fits.map(() => 0);
  const row = new Float32Array(items);
  for (let f = 0; f < fits.length; f++) {
    const model = (fits[f] as { fit: BestFit }).fit.model;
    const store = cache[f] as Float32Array;
    let spread = 0;
    for (let at = 0; at < users.length; at++) {
      const u = users[at] as number;
      const h = history.indices.subarray(history.indptr[u] as number, history.indptr[u + 1] as number);
      model.score(h, history.data.subarray(history.indptr[u] as number, history.indptr[u + 1] as number), row);
      let sum = 0;
      let sq = 0;
      let n = 0;
      for (let j = 0; j < items; j++) {
        const v = row[j] as number;
        if (v <= -1e29) {
          row[j] = 0;
          continue;
        }
        sum += v;
        sq += v * v;
        n++;
      }
      const mean = n ? sum / n : 0;
      spread += Math.sqrt(Math.max(0, (n ? sq / n : 0) - mean * mean));
      store.set(row, at * items);
    }
    scales[f] = spread > 0 ? users.length / spread : 1;
  }
  const popular = popularMask(history.indices, history.indptr[history.rows] as number, items);
  const scores = new Float32Array(items);
  const ranked = new Int32Array(validation.k);
  const evaluate = (weights: readonly number[]): RankingSummary => {
    const metrics = new RankingMetrics(validation.k, items, popular);
    for (let at = 0; at < users.length; at++) {
      const u = users[at] as number;
      scores.fill(0);
      for (let f = 0; f < fits.length; f++) {
        const w = (weights[f] as number) * (scales[f] as number);
        if (w === 0) continue;
        const store = cache[f] as Float32Array;
        const base = at * items;
        for (let j = 0; j < items; j++) scores[j] = (scores[j] as number) + w * (store[base + j] as number);
      }
      for (let e = history.indptr[u] as number; e < (history.indptr[u + 1] as number); e++) {
        scores[history.indices[e] as number] = Number.NEGATIVE_INFINITY;
      }
      const n = topK(scores, validation.k, ranked);
      metrics.add(
        ranked.subarray(0, n),
        new Set(
          validation.testItems.subarray(validation.testIndptr[u] as number, validation.testIndptr[u + 1] as number),
        ),
      );
    }
    return metrics.summary();
  };
  let best: { weights: number[]; summary: RankingSummary } | undefined;
  // Pairs before larger subsets (masks in order of their member count), so a grid cut short by the deadline
  // has compared every pair; at least one point is always ranked.
  const masks = Array.from({ length: (1 << fits.length) - 1 }, (_, at) => at + 1).sort(
    (a, b) => bitCount(a) - bitCount(b) || a - b,
  );
  for (const mask of masks) {
    const members = fits.map((_, f) => f).filter((f) => mask & (1 << f));
    if (members.length < 2) continue;
    for (const point of simplexPoints(members.length, BLEND_STEP)) {
      if (best && now() >= deadline) break;
      const t0 = now();
      const weights = fits.map(() => 0);
      members.forEach((f, at) => {
        weights[f] = point[at] as number;
      });
      const summary = evaluate(weights);
      const named = Object.fromEntries(fits.map((x, f) => [x.family, weights[f] as number]));
      trials.push({
        family: 'blend',
        params: named,
        rung: 0,
        score: summary.ndcg,
        seconds: Math.round((now() - t0) * 1000) / 1000,
      });
      if (!best || summary.ndcg > best.summary.ndcg) best = { weights, summary };
    }
  }
  if (!best) return undefined;
  const chosen = best;
  const weights: BlendWeights = {};
  fits.forEach((x, f) => {
    const w = (chosen.weights[f] as number) * (scales[f] as number);
    if (w > 0) weights[x.family] = Number(w.toPrecision(6));
  });
  return { weights, summary: chosen.summary, seconds: now() - started };
}

/**
 * Tunes every family on a validation split cut from `data` (which must be the training part only), tunes a
 * blend of them, and names the best by validation NDCG@k. Deterministic for a seed and a clock.
 */
export async function selectModel(
  data: TrainingData,
  executors: Executors,
  options: SelectionOptions,
): Promise<Selection> {
  const now = options.now ?? (() => performance.now() / 1000);
  const log = options.log ?? (() => {});
  const started = now();
  const k = options.k ?? 10;
  const families = options.families ?? FAMILIES;
  const weighting = options.weighting ?? {};
  const neighbours = options.neighbours ?? 200;
  const validation = validationOf(data, k, options.maxValidationUsers ?? 2500);
  log(
    `validation: ${validation.train.log.user.length} training events, ${validation.users.length} users to tune on, ${validation.selectUsers.length} to select on`,
  );
  const trials: StoredTrial[] = [];
  const outcomes: FamilyOutcome[] = [];
  const fits: { family: Family; fit: BestFit }[] = [];
  // Item-kNN (cheap) first, EASE (one full fit is its floor) next, ALS (better the more trials) last: what a
  // family leaves of its share goes to the next.
  const order = [...families].sort((a, b) => FAMILIES_BY_COST.indexOf(a) - FAMILIES_BY_COST.indexOf(b));
  // Everything counts against one deadline: what the validation split and each family took (search, served
  // validation, an overrun: EASE's one full fit on a large catalogue can cost more than its share) is what the
  // later families do not get. Without a budget there is no deadline for the blend either.
  const budgeted = options.budgetSeconds > 0;
  const deadline = budgeted ? started + options.budgetSeconds : Number.POSITIVE_INFINITY;
  const blendReserve = families.length > 1 ? options.budgetSeconds * BLEND_SHARE : 0;
  /** The longest served validation of a family so far: what the next one's, and the blend's, will take, about. */
  let validationSeconds = 0;
  for (let at = 0; at < order.length; at++) {
    const family = order[at] as Family;
    const t0 = now();
    // Its served validation comes out of its share, estimated from the ones before it.
    const share = budgeted ? Math.max(0, (deadline - blendReserve - t0) / (order.length - at) - validationSeconds) : 0;
    const runner =
      family === 'als'
        ? alsRunner(validation, executors, weighting)
        : family === 'ease'
          ? easeRunner(validation, executors, weighting, options.easeMaxItems)
          : itemknnRunner(validation, weighting);
    // Without a budget there is no search: the previous best (or the library defaults) is fitted once.
    const pinned =
      options.pinned?.[family] ?? (options.budgetSeconds > 0 ? undefined : (options.warmStart?.[family] ?? {}));
    if (pinned) {
      // A pinned family is fitted once, at full fidelity, with exactly its params.
      const handle = runner.start(pinned as SearchParams);
      const score = await handle.run(runner.rungs - 1);
      trials.push({ family, params: pinned as SearchParams, rung: runner.rungs - 1, score, seconds: now() - t0 });
    } else {
      // A half-life the operator set is kept, not searched.
      const { halfLifeDays: _searched, ...alsSpace } = SEARCH_SPACES.als;
      const space = family === 'als' && weighting.halfLifeDays !== undefined ? alsSpace : SEARCH_SPACES[family];
      const result = await searchParams(space, runner, {
        kind: options.search,
        budgetSeconds: share,
        seed: (options.seed ?? 1) + at,
        // The previous version's best, else the library defaults: a family whose budget allows one fit
        // (EASE on a large catalogue) gets a sensible one rather than a random draw.
        warmStart: (options.warmStart?.[family] ?? LIBRARY_DEFAULTS[family]) as SearchParams,
        now,
      });
      for (const trial of result.trials) trials.push({ family, ...trial });
    }
    const best = runner.best;
    if (!best) throw new Error(`${family}: no full-fidelity fit`);
    fits.push({ family, fit: best });
    // ALS serves by fold-in, as it was scored; the others serve from their neighbour table: score that.
    const validated = now();
    const served =
      family === 'als'
        ? { summary: validate(selecting(validation), best.serving, best.history), historyHalfLifeDays: 0 }
        : validateTable(validation, best.model, best.history, neighbours);
    validationSeconds = Math.max(validationSeconds, now() - validated);
    outcomes.push({ family, params: best.params, validation: served.summary, seconds: now() - t0, ...recency(served) });
    log(
      `${family}: validation ndcg@${k} ${served.summary.ndcg.toFixed(4)} as served${halfLifeNote(served)} (${best.summary.ndcg.toFixed(4)} in its search) (${Math.round(now() - t0)} s) ${JSON.stringify(best.params)}`,
    );
  }
  // The grid stops early enough to leave its served validation, which builds one table from every member's
  // scores, the time a family's took per member.
  const blend = tuneBlend(validation, fits, trials, now, deadline - validationSeconds * fits.length);
  if (blend) {
    const t0 = now();
    const parts = fits
      .filter(({ family }) => (blend.weights[family] ?? 0) > 0)
      .map(({ family, fit }) => ({ model: fit.model, weight: blend.weights[family] ?? 0 }));
    const history = (fits[0] as { fit: BestFit }).fit.history;
    const served = validateTable(validation, blendItemToItem(parts, data.items), history, neighbours);
    outcomes.push({
      family: 'blend',
      params: blend.weights,
      validation: served.summary,
      seconds: blend.seconds + now() - t0,
      ...recency(served),
    });
    log(
      `blend: validation ndcg@${k} ${served.summary.ndcg.toFixed(4)} as served${halfLifeNote(served)} (${blend.summary.ndcg.toFixed(4)} from full scores) (${Math.round(blend.seconds)} s grid, ${Math.round(now() - t0)} s served validation) ${JSON.stringify(blend.weights)}`,
    );
  }
  const winner = outcomes.reduce((a, b) => (b.validation.ndcg > a.validation.ndcg ? b : a));
  const familyParams: Partial<Record<Family, ModelParams>> = {};
  for (const { family, fit } of fits) familyParams[family] = fit.params;
  return {
    chosen: winner.family,
    params: {
      families: familyParams,
      ...(winner.family === 'blend' && blend ? { blend: blend.weights } : {}),
      ...recency(winner),
    },
    validation: winner.validation,
    outcomes,
    trials,
    seconds: now() - started,
    validationUsers: validation.users.length,
  };
}

/** `historyHalfLifeDays` when one was chosen and is not 0, for spreading into outcomes and params. */
function recency(served: { historyHalfLifeDays?: number }): { historyHalfLifeDays?: number } {
  return served.historyHalfLifeDays ? { historyHalfLifeDays: served.historyHalfLifeDays } : {};
}

function halfLifeNote(served: { historyHalfLifeDays?: number }): string {
  return served.historyHalfLifeDays ? ` with a ${served.historyHalfLifeDays}-day history half-life` : '';
}

const FAMILIES_BY_COST: readonly Family[] = ['itemknn', 'ease', 'als'];

/** A fitted choice in the form that serves it. */
export interface FittedChoice {
  readonly choice: Choice;
  /** Scores as serving does: ALS by fold-in, the others from their neighbour table. */
  readonly recommender: Recommender;
  readonly history: HistoryMatrix;
  /** The ALS fit, when the choice is ALS or a blend with ALS in it. */
  readonly als?: AlsModel;
  /** The neighbour table, for every item-to-item choice. */
  readonly neighbours?: NeighbourTable;
}

/**
 * Fits `choice` with `params` on `data` and returns what serves it. Item-to-item choices (EASE, item-kNN, a
 * blend) are reduced to their top `neighbours` per item, and scored from that table as serving scores them.
 */
export async function fitChoice(
  choice: Choice,
  params: ChoiceParams,
  data: TrainingData,
  executors: Executors,
  options: {
    neighbours: number;
    weighting?: ModelParams;
    als?: AlsModel;
    /** Item-to-item fits on this same data, reused and filled in (a blend and its parts share fits). */
    cache?: Map<Family, ItemToItemModel>;
  },
): Promise<FittedChoice> {
  const weighting = options.weighting ?? {};
  const history = historyMatrix(data, weighting);
  const members: Family[] = choice === 'blend' ? Object.keys(params.blend ?? {}).filter(isFamily) : [choice];
  const parts: { model: ItemToItemModel; weight: number }[] = [];
  let als = options.als;
  for (const family of members) {
    const p = params.families[family] ?? {};
    let model: ItemToItemModel | undefined = choice === 'als' ? undefined : options.cache?.get(family);
    if (model) {
      // Fitted before on this data.
    } else if (family === 'als') {
      const alsHistory = historyMatrix(data, { ...weighting, ...p });
      if (!als) {
        const trainer = new AlsTrainer(alsHistory, p, executors.als);
        await trainer.iterate(trainer.params.iterations);
        als = trainer.model();
      }
      if (choice === 'als') return { choice, recommender: alsRecommender(als), history: alsHistory, als };
      model = alsItemToItem(als);
    } else if (family === 'ease') {
      model = await fitEase(history, p, executors.ease);
    } else {
      model = fitItemSimilarity('itemknn', history, transposeCsr(history), p);
    }
    options.cache?.set(family, model);
    parts.push({ model, weight: choice === 'blend' ? (params.blend?.[family] ?? 0) : 1 });
  }
  const model =
    parts.length === 1 ? (parts[0] as { model: ItemToItemModel }).model : blendItemToItem(parts, data.items);
  const neighbours = neighbourTableOf(model, data.items, options.neighbours);
  return {
    choice,
    recommender: tableRecommender(neighbours, choice, params.historyHalfLifeDays ?? 0),
    history,
    ...(als ? { als } : {}),
    neighbours,
  };
}
