// Budgeted hyper-parameter search: successive halving over fidelity rungs (cheap partial fits first, the best
// third goes on), with the configurations of each bracket proposed by a grid, at random, or by a TPE surrogate.
// Pure computation: the caller supplies how a trial is fitted and scored (on a validation split it owns).
//
// The TPE is written here rather than taken from npm: no package in node_modules offers one (the project has
// no optimisation library), packages may not be added, and the well-known TPE / GP libraries are Python
// (hyperopt, optuna, scikit-optimize). The estimator is the textbook one (Bergstra et al. 2011), ~80 lines.
import { seededRandom } from './als.ts';

/** One searched parameter: log-uniform or uniform range (optionally integer), or a set of choices. */
export type ParamSpec =
  | { readonly kind: 'log'; readonly lo: number; readonly hi: number; readonly integer?: boolean }
  | { readonly kind: 'uniform'; readonly lo: number; readonly hi: number; readonly integer?: boolean }
  | { readonly kind: 'choice'; readonly values: readonly ParamValue[] };
export type ParamValue = number | string | boolean;
export type ParamSpace = Readonly<Record<string, ParamSpec>>;
export type SearchParams = Readonly<Record<string, ParamValue>>;

/** How a bracket's configurations are proposed. */
export const SEARCH_KINDS = ['grid', 'random', 'bayes'] as const;
export type SearchKind = (typeof SEARCH_KINDS)[number];

export function isSearchKind(value: string): value is SearchKind {
  return (SEARCH_KINDS as readonly string[]).includes(value);
}

/** A trial under way: `run(rung)` fits it up to that fidelity (continuing from lower rungs) and scores it. */
export interface TrialHandle {
  run(rung: number): Promise<number>;
  /** Frees what the trial holds (factor buffers…) once it will not be promoted again. */
  dispose?(): void;
}

/** What a search needs of a model family: its fidelity rungs and how a trial starts. */
export interface TrialRunner {
  /** Number of fidelity levels; the last is the real fit. 1 = no halving, every trial is a full fit. */
  readonly rungs: number;
  /**
   * Expected cost of a fit at each rung relative to the top one (ALS: its iterations; EASE: n³ of its item
   * cap), so the search can keep back what the last full fit will cost. Default: all 1.
   */
  readonly relativeCost?: readonly number[];
  start(params: SearchParams): TrialHandle;
}

/** One evaluation: a configuration at a rung, its validation score and what it cost. */
export interface TrialRecord {
  readonly params: SearchParams;
  readonly rung: number;
  readonly score: number;
  readonly seconds: number;
}

export interface SearchOptions {
  readonly kind: SearchKind;
  readonly budgetSeconds: number;
  readonly seed?: number;
  /** Tried first, at every rung it survives to (the previous version's best, say). */
  readonly warmStart?: SearchParams;
  /** Survivors per rung = ceil(n / eta). */
  readonly eta?: number;
  /** Clock in seconds (tests substitute one). */
  readonly now?: () => number;
}

export interface SearchResult {
  readonly params: SearchParams;
  /** Validation score of `params` at the top rung. */
  readonly score: number;
  readonly trials: TrialRecord[];
}

/**
 * Searches `space` within `budgetSeconds`. Brackets of eta^(rungs−1) configurations run at rung 0; the best
 * 1/eta of each rung go on. New work starts only while budget remains, except that the best configuration
 * found always gets its top-rung fit (the result must be a real fit), so the budget can be overrun by one fit.
 */
export async function searchParams(
  space: ParamSpace,
  runner: TrialRunner,
  options: SearchOptions,
): Promise<SearchResult> {
  const now = options.now ?? (() => performance.now() / 1000);
  const started = now();
  const top = runner.rungs - 1;
  const relative = (rung: number) => Math.max(1e-6, runner.relativeCost?.[rung] ?? 1);
  // What the best configuration's full fit will cost, estimated from the fits so far; kept back from the
  // budget until that fit is done, so the search ends close to its budget rather than one full fit past it.
  const topReserve = () => {
    if (best && best.rung === top) return 0;
    if (trials.length === 0) return 0;
    let sum = 0;
    for (const t of trials) sum += t.seconds / relative(t.rung);
    return (sum / trials.length) * (1 - (best ? relative(best.rung) : 0));
  };
  const left = () => options.budgetSeconds - (now() - started) - topReserve();
  const eta = options.eta ?? 3;
  const random = seededRandom(options.seed ?? 1);
  const propose = proposer(space, options.kind, random);
  const trials: TrialRecord[] = [];
  const seen = new Set<string>();
  /** Handles of the current bracket that a later rung may still run. */
  const live = new Set<TrialHandle>();
  let best: { params: SearchParams; score: number; rung: number; handle?: TrialHandle } | undefined;

  const evaluate = async (params: SearchParams, handle: TrialHandle, rung: number): Promise<number> => {
    const t0 = now();
    const score = await handle.run(rung);
    trials.push({ params, rung, score, seconds: round3(now() - t0) });
    if (!best || rung > best.rung || (rung === best.rung && score > best.score)) {
      // The former best is freed only once no rung can promote it any more.
      if (best?.handle && best.handle !== handle && !live.has(best.handle)) best.handle.dispose?.();
      best = { params, score, rung, handle };
    }
    return score;
  };

  const history = () => trials.filter((t) => t.rung === 0).map((t) => ({ params: t.params, score: t.score }));
  let first = true;
  while (left() > 0) {
    const size = eta ** top;
    let alive: { params: SearchParams; handle: TrialHandle; score: number }[] = [];
    for (let c = 0; c < size && left() > 0; c++) {
      let params: SearchParams | undefined;
      if (first && options.warmStart) params = { ...propose(history()), ...options.warmStart };
      first = false;
      for (let attempt = 0; !params && attempt < 20; attempt++) {
        const candidate = propose(history());
        if (!seen.has(JSON.stringify(candidate))) params = candidate;
      }
      if (!params) break;
      seen.add(JSON.stringify(params));
      const handle = runner.start(params);
      live.add(handle);
      alive.push({ params, handle, score: await evaluate(params, handle, 0) });
    }
    if (alive.length === 0) break;
    for (let rung = 1; rung <= top && left() > 0; rung++) {
      alive.sort((a, b) => b.score - a.score);
      for (const dropped of alive.slice(Math.ceil(alive.length / eta))) {
        live.delete(dropped.handle);
        if (dropped.handle !== best?.handle) dropped.handle.dispose?.();
      }
      alive = alive.slice(0, Math.ceil(alive.length / eta));
      for (const trial of alive) {
        if (left() <= 0) break;
        trial.score = await evaluate(trial.params, trial.handle, rung);
      }
    }
    for (const trial of alive) {
      live.delete(trial.handle);
      if (trial.handle !== best?.handle) trial.handle.dispose?.();
    }
    // A grid that is exhausted ends the search early.
    if (alive.length < size && left() > 0 && options.kind === 'grid') break;
  }
  if (!best) {
    // No budget at all: one full fit of the warm start (or a first proposal), so there is always a result.
    const params = { ...propose([]), ...options.warmStart };
    await evaluate(params, runner.start(params), top);
  }
  const found = best as { params: SearchParams; score: number; rung: number; handle?: TrialHandle } | undefined;
  if (!found) throw new Error('search ran no trial');
  let { score } = found;
  if (found.rung < top && found.handle) score = await evaluate(found.params, found.handle, top);
  found.handle?.dispose?.();
  return { params: found.params, score, trials };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A value of `spec` from a uniform draw u in [0, 1). */
function fromUnit(spec: ParamSpec, u: number): ParamValue {
  if (spec.kind === 'choice')
    return spec.values[Math.min(spec.values.length - 1, Math.floor(u * spec.values.length))] as ParamValue;
  const x =
    spec.kind === 'log'
      ? Math.exp(Math.log(spec.lo) + u * (Math.log(spec.hi) - Math.log(spec.lo)))
      : spec.lo + u * (spec.hi - spec.lo);
  return spec.integer ? Math.round(x) : Number(x.toPrecision(3));
}

/** The position in [0, 1] of a numeric value of a range spec (the inverse of fromUnit). */
function toUnit(spec: Exclude<ParamSpec, { kind: 'choice' }>, value: number): number {
  if (spec.kind === 'log') return (Math.log(value) - Math.log(spec.lo)) / (Math.log(spec.hi) - Math.log(spec.lo));
  return (value - spec.lo) / (spec.hi - spec.lo);
}

type Proposer = (history: readonly { params: SearchParams; score: number }[]) => SearchParams;

function proposer(space: ParamSpace, kind: SearchKind, random: () => number): Proposer {
  const keys = Object.keys(space);
  const randomPoint = (): SearchParams =>
    Object.fromEntries(keys.map((key) => [key, fromUnit(space[key] as ParamSpec, random())]));
  if (kind === 'random') return randomPoint;
  if (kind === 'grid') {
    // Three levels per range (ends and middle), every choice; the product in a seeded random order.
    const levels = keys.map((key) => {
      const spec = space[key] as ParamSpec;
      return spec.kind === 'choice' ? [...spec.values] : [0.1, 0.5, 0.9].map((u) => fromUnit(spec, u));
    });
    const points: SearchParams[] = [{}];
    for (let d = 0; d < keys.length; d++) {
      const next: SearchParams[] = [];
      for (const p of points) for (const v of levels[d] ?? []) next.push({ ...p, [keys[d] as string]: v });
      points.splice(0, points.length, ...next);
    }
    for (let i = points.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [points[i], points[j]] = [points[j] as SearchParams, points[i] as SearchParams];
    }
    let at = 0;
    return () => points[at++ % points.length] as SearchParams;
  }
  return (history) => tpeSuggest(space, history, random) ?? randomPoint();
}

const TPE_STARTUP = 6;
const TPE_GAMMA = 0.25;
const TPE_CANDIDATES = 32;

/**
 * Tree-structured Parzen estimator: split the observations into the best γ and the rest, model each
 * parameter's density in both groups (Parzen windows on the unit interval with a uniform prior component;
 * smoothed frequencies for choices), draw candidates from the good density and keep the one with the highest
 * good/bad ratio. Undefined until there are enough observations.
 */
export function tpeSuggest(
  space: ParamSpace,
  history: readonly { params: SearchParams; score: number }[],
  random: () => number,
): SearchParams | undefined {
  if (history.length < TPE_STARTUP) return undefined;
  const sorted = [...history].sort((a, b) => b.score - a.score);
  const nGood = Math.max(1, Math.ceil(TPE_GAMMA * sorted.length));
  const good = sorted.slice(0, nGood).map((h) => h.params);
  const bad = sorted.slice(nGood).map((h) => h.params);
  const keys = Object.keys(space);
  const candidates: { params: Record<string, ParamValue>; ratio: number }[] = [];
  for (let c = 0; c < TPE_CANDIDATES; c++) candidates.push({ params: {}, ratio: 0 });
  for (const key of keys) {
    const spec = space[key] as ParamSpec;
    if (spec.kind === 'choice') {
      const freq = (group: readonly SearchParams[]) => {
        const counts = spec.values.map((v) => 1 + group.filter((p) => p[key] === v).length);
        const total = counts.reduce((a, b) => a + b, 0);
        return counts.map((n) => n / total);
      };
      const l = freq(good);
      const g = freq(bad);
      for (const candidate of candidates) {
        let u = random();
        let pick = 0;
        while (pick < l.length - 1 && u >= (l[pick] as number)) u -= l[pick++] as number;
        candidate.params[key] = spec.values[pick] as ParamValue;
        candidate.ratio += Math.log((l[pick] as number) / (g[pick] as number));
      }
      continue;
    }
    const unit = (group: readonly SearchParams[]) =>
      group.map((p) => {
        const v = p[key];
        return typeof v === 'number' ? Math.min(1, Math.max(0, toUnit(spec, v))) : random();
      });
    const l = unit(good);
    const g = unit(bad);
    const width = (n: number) => Math.max(0.08, 0.5 * n ** -0.2);
    const density = (points: number[], x: number) => {
      const h = width(points.length);
      // The uniform prior weighs as one more point, so an empty or narrow group still covers the range.
      let s = 1;
      for (const p of points) s += Math.exp(-0.5 * ((x - p) / h) ** 2) / (h * Math.sqrt(2 * Math.PI));
      return s / (points.length + 1);
    };
    for (const candidate of candidates) {
      const centre =
        l.length > 0 && random() > 1 / (l.length + 1) ? (l[Math.floor(random() * l.length)] as number) : random();
      const x = Math.min(1, Math.max(0, centre + width(l.length) * gaussian(random)));
      candidate.params[key] = fromUnit(spec, Math.min(x, 0.999999));
      candidate.ratio += Math.log(density(l, x) / density(g, x));
    }
  }
  candidates.sort((a, b) => b.ratio - a.ratio);
  return candidates[0]?.params;
}

function gaussian(random: () => number): number {
  const u = Math.max(1e-12, random());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
