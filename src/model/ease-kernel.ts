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
 * Each thread takes its rows two at a time (i and i + threads), so every row another thread finished is read
 * once for both: the phases are bound by memory traffic more than by arithmetic.
 */
export function easeSolve(
  a: Float32Array,
  z: Float32Array,
  n: number,
  flags: Int32Array,
  w: number,
  threads: number,
): void {
  const step = 2 * threads;
  // 1. Cholesky, lower triangle of `a` becomes L.
  for (let i1 = w; i1 < n; i1 += step) {
    const i2 = i1 + threads;
    const r1 = i1 * n;
    const r2 = i2 * n;
    const pair = i2 < n;
    for (let j = 0; j < i1; j++) {
      waitFor(flags, j);
      const rj = j * n;
      const d = a[rj + j] as number;
      if (pair) {
        // Both rows against row j in one pass (inlined: a returned pair would allocate per entry).
        let s1 = 0;
        let s2 = 0;
        let t1 = 0;
        let t2 = 0;
        let m = 0;
        for (; m + 1 < j; m += 2) {
          const y0 = a[rj + m] as number;
          const y1 = a[rj + m + 1] as number;
          s1 += (a[r1 + m] as number) * y0;
          t1 += (a[r1 + m + 1] as number) * y1;
          s2 += (a[r2 + m] as number) * y0;
          t2 += (a[r2 + m + 1] as number) * y1;
        }
        if (m < j) {
          const y0 = a[rj + m] as number;
          s1 += (a[r1 + m] as number) * y0;
          s2 += (a[r2 + m] as number) * y0;
        }
        a[r1 + j] = ((a[r1 + j] as number) - s1 - t1) / d;
        a[r2 + j] = ((a[r2 + j] as number) - s2 - t2) / d;
      } else {
        a[r1 + j] = ((a[r1 + j] as number) - dot(a, r1, a, rj, j)) / d;
      }
    }
    a[r1 + i1] = Math.sqrt(Math.max((a[r1 + i1] as number) - dot(a, r1, a, r1, i1), 1e-12));
    done(flags, i1);
    if (!pair) continue;
    for (let j = i1; j < i2; j++) {
      waitFor(flags, j);
      const rj = j * n;
      a[r2 + j] = ((a[r2 + j] as number) - dot(a, r2, a, rj, j)) / (a[rj + j] as number);
    }
    a[r2 + i2] = Math.sqrt(Math.max((a[r2 + i2] as number) - dot(a, r2, a, r2, i2), 1e-12));
    done(flags, i2);
  }
  // 2. Z = L⁻¹ (lower triangular): row i = (e_i − Σ_{m<i} L[i][m]·Z[m]) / L[i][i].
  for (let i1 = w; i1 < n; i1 += step) {
    const i2 = i1 + threads;
    const r1 = i1 * n;
    const r2 = i2 * n;
    const pair = i2 < n;
    z.fill(0, r1, r1 + n);
    z[r1 + i1] = 1;
    if (pair) {
      z.fill(0, r2, r2 + n);
      z[r2 + i2] = 1;
    }
    for (let m = 0; m < i1; m++) {
      const l1 = a[r1 + m] as number;
      const l2 = pair ? (a[r2 + m] as number) : 0;
      if (l1 === 0 && l2 === 0) continue;
      waitFor(flags, n + m);
      const rm = m * n;
      if (pair) {
        for (let c = 0; c <= m; c++) {
          const zm = z[rm + c] as number;
          z[r1 + c] = (z[r1 + c] as number) - l1 * zm;
          z[r2 + c] = (z[r2 + c] as number) - l2 * zm;
        }
      } else {
        for (let c = 0; c <= m; c++) z[r1 + c] = (z[r1 + c] as number) - l1 * (z[rm + c] as number);
      }
    }
    const inv1 = 1 / (a[r1 + i1] as number);
    for (let c = 0; c <= i1; c++) z[r1 + c] = (z[r1 + c] as number) * inv1;
    done(flags, n + i1);
    if (!pair) continue;
    for (let m = i1; m < i2; m++) {
      const l2 = a[r2 + m] as number;
      if (l2 === 0) continue;
      waitFor(flags, n + m);
      const rm = m * n;
      for (let c = 0; c <= m; c++) z[r2 + c] = (z[r2 + c] as number) - l2 * (z[rm + c] as number);
    }
    const inv2 = 1 / (a[r2 + i2] as number);
    for (let c = 0; c <= i2; c++) z[r2 + c] = (z[r2 + c] as number) * inv2;
    done(flags, n + i2);
  }
  for (let m = 0; m < n; m++) waitFor(flags, n + m);
  // 3. P = ZᵀZ into the lower triangle of `a` (L is no longer read: every thread's phase 2 is over).
  // Row i of P (c ≤ i) = Σ_{m ≥ i} Z[m][i]·Z[m][c]; Z[m][i] = 0 for m < i.
  const acc1 = new Float64Array(n);
  const acc2 = new Float64Array(n);
  for (let i1 = w; i1 < n; i1 += step) {
    const i2 = i1 + threads;
    const pair = i2 < n;
    acc1.fill(0, 0, i1 + 1);
    if (pair) acc2.fill(0, 0, i2 + 1);
    for (let m = i1; m < n; m++) {
      const rm = m * n;
      const z1 = z[rm + i1] as number;
      const z2 = pair && m >= i2 ? (z[rm + i2] as number) : 0;
      if (z2 === 0) {
        if (z1 === 0) continue;
        for (let c = 0; c <= i1; c++) acc1[c] = (acc1[c] as number) + z1 * (z[rm + c] as number);
        continue;
      }
      for (let c = 0; c <= i1; c++) {
        const v = z[rm + c] as number;
        acc1[c] = (acc1[c] as number) + z1 * v;
        acc2[c] = (acc2[c] as number) + z2 * v;
      }
      for (let c = i1 + 1; c <= i2; c++) acc2[c] = (acc2[c] as number) + z2 * (z[rm + c] as number);
    }
    const r1 = i1 * n;
    for (let c = 0; c <= i1; c++) a[r1 + c] = acc1[c] as number;
    done(flags, 2 * n + i1);
    if (!pair) continue;
    const r2 = i2 * n;
    for (let c = 0; c <= i2; c++) a[r2 + c] = acc2[c] as number;
    done(flags, 2 * n + i2);
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
