// The EASE solve, B = I − P·diag(1/diag(P)) with P = G⁻¹, on float32 matrices in SharedArrayBuffers, written so
// T threads run it together: thread w of T owns the rows i ≡ w (mod T) of every phase, and a row waits (on a
// shared flag per row) only for the rows it reads. Storage is float32 (a 5,000-item Gram is 100 MB, not 200);
// every dot product accumulates in double precision, so the loss is in the stored entries only.
//   1. Cholesky G = LLᵀ row by row: L[i][j] needs row j finished, so rows i and i+1 run side by side.
//   2. Z = L⁻¹ row by row: row i of Z needs the rows of Z above it.
//   3. P = ZᵀZ, row i of P = Σ_{m≥i} Z[m][i]·Z[m][0..i] (lower triangle), once all of Z is known.
//   4. B from P, written over Z (row i of B reads row and column i of P), once all of P is known.
// About n³/2 multiply-adds in all (n³/6 per phase 1–3).

/** Flags shared by the threads of one solve: 4 phases × n rows, 1 = that row of that phase is written. */
export function easeFlags(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(4, 4 * n * 4)));
}

function waitFor(flags: Int32Array, at: number): void {
  while (Atomics.load(flags, at) === 0) Atomics.wait(flags, at, 0, 50);
}

function done(flags: Int32Array, at: number): void {
  Atomics.store(flags, at, 1);
  Atomics.notify(flags, at);
}

/** Σ_{m<len} x[xo+m]·y[yo+m], four accumulators (the JIT keeps them in registers). */
function dot(x: Float32Array, xo: number, y: Float32Array, yo: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let m = 0;
  for (; m + 3 < len; m += 4) {
    s0 += (x[xo + m] as number) * (y[yo + m] as number);
    s1 += (x[xo + m + 1] as number) * (y[yo + m + 1] as number);
    s2 += (x[xo + m + 2] as number) * (y[yo + m + 2] as number);
    s3 += (x[xo + m + 3] as number) * (y[yo + m + 3] as number);
  }
  for (; m < len; m++) s0 += (x[xo + m] as number) * (y[yo + m] as number);
  return s0 + s1 + s2 + s3;
}

/**
 * Thread `w` of `threads`' share of the EASE solve. `a` holds G + λI (n×n, row-major) on entry and P after;
 * `z` (n×n) holds B on return of every thread. `flags` from {@link easeFlags}, shared by all threads.
 */
export function easeSolve(
  a: Float32Array,
  z: Float32Array,
  n: number,
  flags: Int32Array,
  w: number,
  threads: number,
): void {
  // 1. Cholesky, lower triangle of `a` becomes L.
  for (let i = w; i < n; i += threads) {
    const ri = i * n;
    for (let j = 0; j < i; j++) {
      waitFor(flags, j);
      const rj = j * n;
      a[ri + j] = ((a[ri + j] as number) - dot(a, ri, a, rj, j)) / (a[rj + j] as number);
    }
    const d = (a[ri + i] as number) - dot(a, ri, a, ri, i);
    a[ri + i] = Math.sqrt(Math.max(d, 1e-12));
    done(flags, i);
  }
  // 2. Z = L⁻¹ (lower triangular): row i = (e_i − Σ_{m<i} L[i][m]·Z[m]) / L[i][i].
  for (let i = w; i < n; i += threads) {
    const ri = i * n;
    z.fill(0, ri, ri + n);
    z[ri + i] = 1;
    for (let m = 0; m < i; m++) {
      const l = a[ri + m] as number;
      if (l === 0) continue;
      waitFor(flags, n + m);
      const rm = m * n;
      for (let c = 0; c <= m; c++) z[ri + c] = (z[ri + c] as number) - l * (z[rm + c] as number);
    }
    const inv = 1 / (a[ri + i] as number);
    for (let c = 0; c <= i; c++) z[ri + c] = (z[ri + c] as number) * inv;
    done(flags, n + i);
  }
  for (let m = 0; m < n; m++) waitFor(flags, n + m);
  // 3. P = ZᵀZ into the lower triangle of `a` (L is no longer read: every thread's phase 2 is over).
  const acc = new Float64Array(n);
  for (let i = w; i < n; i += threads) {
    const ri = i * n;
    acc.fill(0, 0, i + 1);
    for (let m = i; m < n; m++) {
      const rm = m * n;
      const zi = z[rm + i] as number;
      if (zi === 0) continue;
      for (let c = 0; c <= i; c++) acc[c] = (acc[c] as number) + zi * (z[rm + c] as number);
    }
    for (let c = 0; c <= i; c++) a[ri + c] = acc[c] as number;
    done(flags, 2 * n + i);
  }
  for (let m = 0; m < n; m++) waitFor(flags, 2 * n + m);
  // 4. B[i][j] = −P[i][j] / P[j][j], zero diagonal; P[i][j] for j > i is the mirror P[j][i].
  for (let i = w; i < n; i += threads) {
    const ri = i * n;
    for (let j = 0; j < n; j++) {
      const p = j <= i ? (a[ri + j] as number) : (a[j * n + i] as number);
      z[ri + j] = i === j ? 0 : -p / (a[j * n + j] as number);
    }
    done(flags, 3 * n + i);
  }
}
