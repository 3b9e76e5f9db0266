// The numeric kernels of implicit ALS (Hu, Koren & Volinsky 2008), shared by the main thread, the worker
// threads and fold-in. For row u with observed columns i, confidence c_ui = 1 + cm1_ui (the CSR data holds
// cm1 = c - 1) and preference 1, the row solves
//   (G + λI + Σ_i cm1_ui y_i y_iᵀ) x_u = Σ_i c_ui y_i,   G = YᵀY over all columns,
// either exactly (Cholesky) or with a few conjugate-gradient steps warm-started from the current x_u
// (Takács, Pilászy & Tikk 2011), which never needs the K×K matrix of the row.

/** One half-step's inputs: solve rows [start, end) of `target` against the fixed `source` factors. */
export interface SolveTask {
  readonly target: Float32Array;
  readonly source: Float32Array;
  readonly gram: Float64Array;
  readonly indptr: Int32Array;
  readonly indices: Int32Array;
  /** Confidence minus one per stored entry. */
  readonly cm1: Float32Array;
  readonly factors: number;
  readonly lambda: number;
  readonly start: number;
  readonly end: number;
  /** 0 = exact Cholesky solve; otherwise the number of CG steps. */
  readonly cgSteps: number;
}

/** Scratch buffers of one thread, sized for `factors`. */
export interface Scratch {
  readonly a: Float64Array;
  readonly b: Float64Array;
  readonly r: Float64Array;
  readonly p: Float64Array;
  readonly ap: Float64Array;
  readonly x: Float64Array;
}

export function makeScratch(factors: number): Scratch {
  return {
    a: new Float64Array(factors * factors),
    b: new Float64Array(factors),
    r: new Float64Array(factors),
    p: new Float64Array(factors),
    ap: new Float64Array(factors),
    x: new Float64Array(factors),
  };
}

/** Adds Σ f fᵀ over rows [start, end) of `f` (row-major, `k` columns) into `out` (k×k, full). */
export function addGram(f: Float32Array, k: number, start: number, end: number, out: Float64Array): void {
  // Upper triangle in the hot loop, mirrored once at the end.
  for (let row = start; row < end; row++) {
    const base = row * k;
    for (let a = 0; a < k; a++) {
      const fa = f[base + a] as number;
      if (fa === 0) continue;
      const o = a * k;
      for (let b = a; b < k; b++) out[o + b] = (out[o + b] as number) + fa * (f[base + b] as number);
    }
  }
  for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) out[a * k + b] = out[b * k + a] as number;
}

/** Scratch for solveRowExact's transposed item vectors; grows to the largest row seen. */
let transposed = new Float64Array(0);

/**
 * Σ_{m<n} a[x+m]·a[y+m] with four independent sums: one running sum waits on the previous addition every
 * step, four keep the floating-point unit busy (measured: the 64×64 Cholesky 0.13 → 0.09 ms).
 */
function dot(a: Float64Array, x: number, y: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let m = 0;
  for (; m + 3 < n; m += 4) {
    s0 += (a[x + m] as number) * (a[y + m] as number);
    s1 += (a[x + m + 1] as number) * (a[y + m + 1] as number);
    s2 += (a[x + m + 2] as number) * (a[y + m + 2] as number);
    s3 += (a[x + m + 3] as number) * (a[y + m + 3] as number);
  }
  for (; m < n; m++) s0 += (a[x + m] as number) * (a[y + m] as number);
  return s0 + s1 + s2 + s3;
}

/**
 * Solves A x = b in place for symmetric positive-definite A (k×k, row-major, overwritten by its Cholesky
 * factor); the answer replaces b.
 */
export function choleskySolve(a: Float64Array, b: Float64Array, k: number): void {
  for (let j = 0; j < k; j++) {
    const rj = j * k;
    const d = (a[rj + j] as number) - dot(a, rj, rj, j);
    // A tiny floor instead of NaN when rounding makes a nearly singular system look indefinite.
    const djj = Math.sqrt(Math.max(d, 1e-12));
    a[rj + j] = djj;
    for (let i = j + 1; i < k; i++) {
      const ri = i * k;
      a[ri + j] = ((a[ri + j] as number) - dot(a, ri, rj, j)) / djj;
    }
  }
  for (let i = 0; i < k; i++) {
    let s = b[i] as number;
    for (let m = 0; m < i; m++) s -= (a[i * k + m] as number) * (b[m] as number);
    b[i] = s / (a[i * k + i] as number);
  }
  for (let i = k - 1; i >= 0; i--) {
    let s = b[i] as number;
    for (let m = i + 1; m < k; m++) s -= (a[m * k + i] as number) * (b[m] as number);
    b[i] = s / (a[i * k + i] as number);
  }
}

/**
 * Exact solve of one row from its entries `indices[from..to)` / `cm1[from..to)`: the answer lands in `s.b`.
 * Fold-in uses exactly this, so a folded-in shopper equals the training solve.
 */
export function solveRowExact(
  source: Float32Array,
  gram: Float64Array,
  k: number,
  lambda: number,
  indices: ArrayLike<number>,
  cm1: ArrayLike<number>,
  from: number,
  to: number,
  s: Scratch,
): void {
  const { a, b } = s;
  a.set(gram);
  for (let f = 0; f < k; f++) a[f * k + f] = (a[f * k + f] as number) + lambda;
  b.fill(0);
  // The row's item vectors, transposed into doubles: column f of the items is yt[f*n .. f*n+n), and wyt
  // holds the same scaled by c−1. Each entry of A then is one contiguous dot product kept in registers,
  // instead of n read-modify-writes of A: about 1.5× faster for a fold-in of 50 items at k = 64.
  const n = to - from;
  if (transposed.length < 2 * k * n) transposed = new Float64Array(2 * k * n);
  const yt = transposed;
  const wyt = k * n;
  for (let e = 0; e < n; e++) {
    const base = (indices[from + e] as number) * k;
    const w = cm1[from + e] as number;
    for (let f = 0; f < k; f++) {
      const y = source[base + f] as number;
      yt[f * n + e] = y;
      yt[wyt + f * n + e] = w * y;
      b[f] = (b[f] as number) + (1 + w) * y;
    }
  }
  // Upper triangle only: the Cholesky reads a[i*k+j] for j < i, so mirror afterwards.
  for (let f = 0; f < k; f++) {
    const o = f * k;
    for (let g = f; g < k; g++) a[o + g] = (a[o + g] as number) + dot(yt, wyt + f * n, g * n, n);
  }
  for (let f = 0; f < k; f++) for (let g = 0; g < f; g++) a[f * k + g] = a[g * k + f] as number;
  choleskySolve(a, b, k);
}

/** y ← (G + λI) v + Σ cm1 (y_i·v) y_i over the row's entries. */
function applyA(
  source: Float32Array,
  gram: Float64Array,
  k: number,
  lambda: number,
  indices: Int32Array,
  cm1: Float32Array,
  from: number,
  to: number,
  v: Float64Array,
  out: Float64Array,
): void {
  // (G + λI) v four rows at a time: each v[g] load feeds four independent sums, which is ~1.6× faster than one
  // row at a time in V8 (measured on a 64×64 Gram); this product dominates rows with few entries.
  let f = 0;
  for (; f + 3 < k; f += 4) {
    const o0 = f * k;
    const o1 = o0 + k;
    const o2 = o1 + k;
    const o3 = o2 + k;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let g = 0; g < k; g++) {
      const vg = v[g] as number;
      s0 += (gram[o0 + g] as number) * vg;
      s1 += (gram[o1 + g] as number) * vg;
      s2 += (gram[o2 + g] as number) * vg;
      s3 += (gram[o3 + g] as number) * vg;
    }
    out[f] = s0 + lambda * (v[f] as number);
    out[f + 1] = s1 + lambda * (v[f + 1] as number);
    out[f + 2] = s2 + lambda * (v[f + 2] as number);
    out[f + 3] = s3 + lambda * (v[f + 3] as number);
  }
  for (; f < k; f++) {
    const o = f * k;
    let sum = lambda * (v[f] as number);
    for (let g = 0; g < k; g++) sum += (gram[o + g] as number) * (v[g] as number);
    out[f] = sum;
  }
  for (let e = from; e < to; e++) {
    const base = (indices[e] as number) * k;
    // Four partial sums break the add chain (k is a multiple of 4 in practice; the tail loop covers the rest).
    let d0 = 0;
    let d1 = 0;
    let d2 = 0;
    let d3 = 0;
    let g = 0;
    for (; g + 3 < k; g += 4) {
      d0 += (source[base + g] as number) * (v[g] as number);
      d1 += (source[base + g + 1] as number) * (v[g + 1] as number);
      d2 += (source[base + g + 2] as number) * (v[g + 2] as number);
      d3 += (source[base + g + 3] as number) * (v[g + 3] as number);
    }
    for (; g < k; g++) d0 += (source[base + g] as number) * (v[g] as number);
    const w = (cm1[e] as number) * (d0 + d1 + d2 + d3);
    for (let f = 0; f < k; f++) out[f] = (out[f] as number) + w * (source[base + f] as number);
  }
}

/** Solves rows [task.start, task.end) of the target in place. */
export function solveRows(task: SolveTask, s: Scratch): void {
  const { target, source, gram, indptr, indices, cm1, factors: k, lambda, cgSteps } = task;
  const { r, p, ap, x } = s;
  for (let row = task.start; row < task.end; row++) {
    const from = indptr[row] as number;
    const to = indptr[row + 1] as number;
    const out = row * k;
    if (cgSteps === 0) {
      solveRowExact(source, gram, k, lambda, indices, cm1, from, to, s);
      for (let f = 0; f < k; f++) target[out + f] = s.b[f] as number;
      continue;
    }
    // r = b − A x with b = Σ (1 + cm1) y, warm start from the current row.
    for (let f = 0; f < k; f++) x[f] = target[out + f] as number;
    applyA(source, gram, k, lambda, indices, cm1, from, to, x, ap);
    for (let f = 0; f < k; f++) r[f] = -(ap[f] as number);
    for (let e = from; e < to; e++) {
      const base = (indices[e] as number) * k;
      const c = 1 + (cm1[e] as number);
      for (let f = 0; f < k; f++) r[f] = (r[f] as number) + c * (source[base + f] as number);
    }
    let rs = 0;
    for (let f = 0; f < k; f++) {
      p[f] = r[f] as number;
      rs += (r[f] as number) * (r[f] as number);
    }
    for (let step = 0; step < cgSteps && rs > 1e-20; step++) {
      applyA(source, gram, k, lambda, indices, cm1, from, to, p, ap);
      let pap = 0;
      for (let f = 0; f < k; f++) pap += (p[f] as number) * (ap[f] as number);
      if (!(pap > 0)) break;
      const alpha = rs / pap;
      let rsNew = 0;
      for (let f = 0; f < k; f++) {
        x[f] = (x[f] as number) + alpha * (p[f] as number);
        const rf = (r[f] as number) - alpha * (ap[f] as number);
        r[f] = rf;
        rsNew += rf * rf;
      }
      const beta = rsNew / rs;
      for (let f = 0; f < k; f++) p[f] = (r[f] as number) + beta * (p[f] as number);
      rs = rsNew;
    }
    for (let f = 0; f < k; f++) target[out + f] = x[f] as number;
  }
}

/** How a summed interaction weight r becomes confidence minus one (Hu et al. §4: linear or log scaling). */
export interface ConfidenceParams {
  /** Confidence weight: c = 1 + alpha · r (linear) or 1 + alpha · log(1 + r / epsilon) (log). */
  readonly alpha: number;
  readonly confidence: 'linear' | 'log';
  readonly epsilon: number;
}

/** c − 1 for a summed weight r. */
export function confidenceMinusOne(r: number, p: ConfidenceParams): number {
  return p.confidence === 'log' ? p.alpha * Math.log1p(r / p.epsilon) : p.alpha * r;
}
