// EASE (Steck 2019): a linear item-to-item model with a closed form, B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹,
// diag(B) = 0. Dense in the number of items: float32, solved on worker threads (ease-kernel.ts), capped at
// EASE_MAX_ITEMS items; items with fewer than `minUsers` training users are left out of the matrix.

import { type EaseExecutor, sharedSquare } from './ease-pool.ts';
import type { Csr } from './interactions.ts';
import type { ItemToItemModel } from './recommender.ts';

/** Hyper-parameters of EASE. */
export interface EaseParams {
  readonly lambda?: number;
  readonly minUsers?: number;
  /** At most this many items (those with the most users) enter the matrix. */
  readonly maxItems?: number;
}

/**
 * In-place inverse of a symmetric positive-definite n×n matrix (row-major). Cholesky, then Z = L⁻¹, then
 * A⁻¹ = ZᵀZ, each written as contiguous row dot products or row updates (about n³/2 multiply-adds). Uses one
 * extra n×n buffer. Returns the full symmetric inverse in `a`.
 */
export function invertSpd(a: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = a[rj + j] as number;
    for (let m = 0; m < j; m++) d -= (a[rj + m] as number) ** 2;
    const ljj = Math.sqrt(Math.max(d, 1e-12));
    a[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = a[ri + j] as number;
      for (let m = 0; m < j; m++) s -= (a[ri + m] as number) * (a[rj + m] as number);
      a[ri + j] = s / ljj;
    }
  }
  // Z = L⁻¹, lower triangular: row i = (e_i − Σ_{m<i} L[i][m] Z[m]) / L[i][i].
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    z[ri + i] = 1;
    for (let m = 0; m < i; m++) {
      const l = a[ri + m] as number;
      if (l === 0) continue;
      const rm = m * n;
      for (let c = 0; c <= m; c++) z[ri + c] = (z[ri + c] as number) - l * (z[rm + c] as number);
    }
    const inv = 1 / (a[ri + i] as number);
    for (let c = 0; c <= i; c++) z[ri + c] = (z[ri + c] as number) * inv;
  }
  // A⁻¹ = ZᵀZ: accumulate the outer product of each row of Z (lower triangle, then mirror).
  a.fill(0);
  for (let m = 0; m < n; m++) {
    const rm = m * n;
    for (let i = 0; i <= m; i++) {
      const zi = z[rm + i] as number;
      if (zi === 0) continue;
      const ri = i * n;
      for (let c = 0; c <= i; c++) a[ri + c] = (a[ri + c] as number) + zi * (z[rm + c] as number);
    }
  }
  for (let i = 0; i < n; i++) for (let c = i + 1; c < n; c++) a[i * n + c] = a[c * n + i] as number;
}

/**
 * The item limit EASE fits without asking: a dense solve costs ~n³/2 multiply-adds and 8n² bytes (two float32
 * n×n matrices), so 5,000 items are ~60 G multiply-adds and 200 MB, tens of seconds on two threads, while
 * 20,000 would be 64× the work and 3.2 GB. Above the limit EASE keeps the items with the most users; the rest
 * score nothing from EASE (a blend or ALS covers them).
 */
export const EASE_MAX_ITEMS = 5000;

/**
 * The items EASE models: those with at least `minUsers` users, and of those at most `maxItems`, the ones with
 * the most users (ties to the lower index). Returns the kept original indices, ascending.
 */
export function easeItems(userItems: Csr, minUsers: number, maxItems: number): Int32Array {
  const items = userItems.cols;
  const nnz = userItems.indptr[userItems.rows] as number;
  const counts = new Int32Array(items);
  for (let e = 0; e < nnz; e++) {
    const i = userItems.indices[e] as number;
    counts[i] = (counts[i] as number) + 1;
  }
  let kept: number[] = [];
  for (let i = 0; i < items; i++) if ((counts[i] as number) >= minUsers) kept.push(i);
  if (kept.length > maxItems) {
    kept = kept
      .sort((a, b) => (counts[b] as number) - (counts[a] as number) || a - b)
      .slice(0, maxItems)
      .sort((a, b) => a - b);
  }
  return Int32Array.from(kept);
}

/**
 * Fits EASE on which items each user has (binary), scoring a shopper as the sum of their items' rows of B. The
 * solve runs on `executor` (worker threads); `params.maxItems` (default {@link EASE_MAX_ITEMS}) caps the matrix.
 */
export async function fitEase(userItems: Csr, params: EaseParams, executor: EaseExecutor): Promise<ItemToItemModel> {
  const lambda = params.lambda ?? 300;
  const keptItems = easeItems(userItems, params.minUsers ?? 1, params.maxItems ?? EASE_MAX_ITEMS);
  const items = userItems.cols;
  const n = keptItems.length;
  const dense = new Int32Array(items).fill(-1);
  for (let d = 0; d < n; d++) dense[keptItems[d] as number] = d;
  const g = sharedSquare(n);
  const row: number[] = [];
  for (let u = 0; u < userItems.rows; u++) {
    row.length = 0;
    for (let e = userItems.indptr[u] as number; e < (userItems.indptr[u + 1] as number); e++) {
      const d = dense[userItems.indices[e] as number] as number;
      if (d >= 0) row.push(d);
    }
    for (const a of row) {
      const ra = a * n;
      for (const b of row) g[ra + b] = (g[ra + b] as number) + 1;
    }
  }
  for (let i = 0; i < n; i++) g[i * n + i] = (g[i * n + i] as number) + lambda;
  const b = sharedSquare(n);
  await executor.solve(g, b, n);
  const acc = new Float32Array(n);
  return {
    name: 'ease',
    score(history, _weights, out) {
      acc.fill(0);
      for (let h = 0; h < history.length; h++) {
        const d = dense[history[h] as number] as number;
        if (d < 0) continue;
        const base = d * n;
        for (let j = 0; j < n; j++) acc[j] = (acc[j] as number) + (b[base + j] as number);
      }
      // Items outside the matrix rank after every modelled item, even a negatively scored one.
      out.fill(-1e30);
      for (let j = 0; j < n; j++) out[keptItems[j] as number] = acc[j] as number;
    },
    row(item, out) {
      out.fill(0);
      const d = dense[item] as number;
      if (d < 0) return;
      const base = d * n;
      for (let j = 0; j < n; j++) out[keptItems[j] as number] = b[base + j] as number;
    },
  };
}
