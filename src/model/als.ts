// Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with conjugate-gradient row solves, on flat Float32Array
// factors that live in SharedArrayBuffers so worker threads update them in place.

import { addGram, confidenceMinusOne, makeWhitening } from './als-kernel.ts';
import type { AlsExecutor } from './als-pool.ts';
import { type FoldInModel, foldIn, makeFoldInScratch } from './fold-in.ts';
import { type Csr, mapCsr, transposeCsr } from './interactions.ts';
import type { Recommender } from './recommender.ts';

/** ALS hyper-parameters; every field has a default. */
export interface AlsParams {
  readonly factors: number;
  /** L2 regularisation λ on both factor matrices. */
  readonly lambda: number;
  readonly alpha: number;
  readonly confidence: 'linear' | 'log';
  readonly epsilon: number;
  readonly iterations: number;
  /** CG steps per row and half-step; 0 solves each row exactly (Cholesky), slower but the textbook update. */
  readonly cgSteps: number;
  readonly seed: number;
}

export const DEFAULT_ALS_PARAMS: AlsParams = Object.freeze({
  factors: 64,
  lambda: 0.1,
  alpha: 10,
  confidence: 'linear',
  epsilon: 1,
  iterations: 15,
  cgSteps: 3,
  seed: 1,
});

/** A trained model: factors plus what fold-in and scoring need. */
export interface AlsModel extends FoldInModel {
  readonly users: number;
  readonly items: number;
  /** Users × factors, row-major. */
  readonly userFactors: Float32Array;
}

/** Deterministic PRNG (mulberry32) so a seed reproduces a run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(Math.max(1, n) * 4), 0, n);
}

/**
 * Row ranges of roughly equal work: a CG row costs ~k² for its two triangular changes of variables plus ~8k
 * per entry (a dot and an update per pass, four passes), so k per row and 8 per entry in units of k.
 */
function balancedRanges(indptr: Int32Array, k: number, chunks: number): [number, number][] {
  const rows = indptr.length - 1;
  const total = rows * k + 8 * (indptr[rows] as number);
  const per = Math.max(1, total / chunks);
  const ranges: [number, number][] = [];
  let start = 0;
  let acc = 0;
  for (let r = 0; r < rows; r++) {
    acc += k + 8 * ((indptr[r + 1] as number) - (indptr[r] as number));
    if (acc >= per) {
      ranges.push([start, r + 1]);
      start = r + 1;
      acc = 0;
    }
  }
  if (start < rows) ranges.push([start, rows]);
  return ranges;
}

/**
 * Trains ALS a few iterations at a time (tuning continues the promising runs). The user → item matrix holds
 * summed event weights; confidences are derived once.
 */
export class AlsTrainer {
  readonly params: AlsParams;
  readonly userFactors: Float32Array;
  readonly itemFactors: Float32Array;
  private readonly ui: Csr;
  private readonly iu: Csr;
  private readonly userRanges: [number, number][];
  private readonly itemRanges: [number, number][];
  private itemGram: Float64Array | undefined;
  /** The fixed side of a CG half-step, whitened (rows of the larger side; reused by both half-steps). */
  private readonly whitened: Float32Array;
  iterationsDone = 0;

  constructor(
    userItems: Csr,
    params: Partial<AlsParams>,
    private readonly executor: AlsExecutor,
  ) {
    this.params = { ...DEFAULT_ALS_PARAMS, ...params };
    const p = this.params;
    this.ui = mapCsr(userItems, (r) => confidenceMinusOne(r, p), true);
    this.iu = transposeCsr(this.ui, true);
    const k = p.factors;
    this.userFactors = sharedFloat32(userItems.rows * k);
    this.itemFactors = sharedFloat32(userItems.cols * k);
    this.whitened = sharedFloat32(p.cgSteps === 0 ? 0 : Math.max(userItems.rows, userItems.cols) * k);
    // Small random item factors; users start at zero and are solved first.
    const random = seededRandom(p.seed);
    const scale = 0.1 / Math.sqrt(k);
    for (let i = 0; i < this.itemFactors.length; i++) this.itemFactors[i] = (random() * 2 - 1) * scale;
    const chunks = executor.threads === 1 ? 1 : executor.threads * 16;
    this.userRanges = balancedRanges(this.ui.indptr, k, chunks);
    this.itemRanges = balancedRanges(this.iu.indptr, k, chunks);
  }

  /** Runs `n` full iterations (a user half-step, then an item half-step). */
  async iterate(n = 1): Promise<void> {
    for (let it = 0; it < n; it++) {
      await this.solveUsers();
      await this.halfStep(this.itemFactors, this.userFactors, this.ui.rows, this.iu, this.itemRanges);
      this.itemGram = undefined;
      this.iterationsDone++;
    }
  }

  /** Runs only the user half-step against the current item factors (what fold-in reproduces). */
  async solveUsers(): Promise<void> {
    await this.halfStep(this.userFactors, this.itemFactors, this.iu.rows, this.ui, this.userRanges);
  }

  /** Solves every row of `target` (rows of `rows`) against the fixed `source` factors (`sourceRows` of them). */
  private async halfStep(
    target: Float32Array,
    source: Float32Array,
    sourceRows: number,
    rows: Csr,
    ranges: readonly (readonly [number, number])[],
  ): Promise<void> {
    const p = this.params;
    const k = p.factors;
    const gram = await this.executor.gram(source, k, sourceRows);
    const entries = { target, indptr: rows.indptr, indices: rows.indices, cm1: rows.data, factors: k };
    if (p.cgSteps === 0) {
      await this.executor.solve({ ...entries, method: 'exact', source, gram, lambda: p.lambda }, ranges);
      return;
    }
    const whitening = makeWhitening(gram, k, p.lambda);
    await this.executor.whiten(whitening.lowerInverse, source, this.whitened, k, sourceRows);
    await this.executor.solve(
      { ...entries, method: 'cg', whitenedSource: this.whitened, whitening, cgSteps: p.cgSteps },
      ranges,
    );
  }

  /**
   * The objective Σ_ui c_ui (p_ui − x_u·y_i)² + λ(‖X‖² + ‖Y‖²), using Σ over all pairs of (x·y)² = Σ_u x_uᵀ(YᵀY)x_u
   * so the cost is O(users·k² + nnz·k), not O(users·items).
   */
  loss(): number {
    const k = this.params.factors;
    const X = this.userFactors;
    const Y = this.itemFactors;
    const gram = new Float64Array(k * k);
    addGram(Y, k, 0, this.iu.rows, gram);
    let total = 0;
    for (let u = 0; u < this.ui.rows; u++) {
      const base = u * k;
      for (let a = 0; a < k; a++) {
        let s = 0;
        for (let b = 0; b < k; b++) s += (gram[a * k + b] as number) * (X[base + b] as number);
        total += s * (X[base + a] as number);
      }
      for (let e = this.ui.indptr[u] as number; e < (this.ui.indptr[u + 1] as number); e++) {
        const ib = (this.ui.indices[e] as number) * k;
        let s = 0;
        for (let f = 0; f < k; f++) s += (X[base + f] as number) * (Y[ib + f] as number);
        const c = 1 + (this.ui.data[e] as number);
        total += c * (1 - s) * (1 - s) - s * s;
      }
    }
    let norms = 0;
    for (let i = 0; i < X.length; i++) norms += (X[i] as number) * (X[i] as number);
    for (let i = 0; i < Y.length; i++) norms += (Y[i] as number) * (Y[i] as number);
    return total + this.params.lambda * norms;
  }

  /** The trained model (sharing this trainer's factor buffers). */
  model(): AlsModel {
    const p = this.params;
    if (!this.itemGram) {
      this.itemGram = new Float64Array(p.factors * p.factors);
      addGram(this.itemFactors, p.factors, 0, this.iu.rows, this.itemGram);
    }
    return {
      users: this.ui.rows,
      items: this.iu.rows,
      factors: p.factors,
      lambda: p.lambda,
      alpha: p.alpha,
      confidence: p.confidence,
      epsilon: p.epsilon,
      userFactors: this.userFactors,
      itemFactors: this.itemFactors,
      itemGram: this.itemGram,
    };
  }
}

/** Trains ALS for `params.iterations` iterations on the given executor. */
export async function trainAls(userItems: Csr, params: Partial<AlsParams>, executor: AlsExecutor): Promise<AlsModel> {
  const trainer = new AlsTrainer(userItems, params, executor);
  await trainer.iterate(trainer.params.iterations);
  return trainer.model();
}

/** Scores every item as y_i · x where x is the shopper folded in from their history. */
export function alsRecommender(model: AlsModel, name = 'als'): Recommender {
  const scratch = makeFoldInScratch(model.factors);
  const x = new Float32Array(model.factors);
  const k = model.factors;
  const Y = model.itemFactors;
  return {
    name,
    score(items, weights, out) {
      foldIn(model, items, weights, x, scratch);
      for (let i = 0; i < model.items; i++) {
        let s = 0;
        const base = i * k;
        for (let f = 0; f < k; f++) s += (Y[base + f] as number) * (x[f] as number);
        out[i] = s;
      }
    },
  };
}
