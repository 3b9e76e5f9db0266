// Interaction logs and the compressed sparse row (CSR) matrices every model trains on. Flat typed arrays only:
// 10 M interactions must fit in a few hundred MB, and the ALS threads share these buffers without copying.

/**
 * An interaction log in columns, one entry per event. `user` and `item` are dense indices into the caller's
 * id tables; `time` is epoch milliseconds; `type` indexes the caller's event-type names; `value` is the optional
 * numeric column (e.g. quantity), 1 when absent.
 */
export interface InteractionLog {
  readonly user: Int32Array;
  readonly item: Int32Array;
  readonly time: Float64Array;
  readonly type: Uint8Array;
  readonly value: Float32Array;
}

/** A sparse matrix in CSR form: row r holds `indices[indptr[r]..indptr[r+1])` with the matching `data`. */
export interface Csr {
  readonly rows: number;
  readonly cols: number;
  readonly indptr: Int32Array;
  readonly indices: Int32Array;
  readonly data: Float32Array;
}

/** Milliseconds in a day: half-lives and ages are in days. */
export const DAY_MS = 86_400_000;

/** How event types and time turn into an interaction's weight before it is summed per (user, item). */
export interface WeightingParams {
  /** Weight per event type name; types not listed weigh `defaultTypeWeight`. */
  readonly typeWeights?: Readonly<Record<string, number>>;
  readonly defaultTypeWeight?: number;
  /** Halves an event's weight every `halfLifeDays` before the newest event; 0 or absent means no decay. */
  readonly halfLifeDays?: number;
  /** Multiply by the log's `value` column (e.g. quantity), compressed as log1p. */
  readonly useValue?: boolean;
}

/** Default event weights: a purchase says more than a click, which says more than a view. */
export const DEFAULT_TYPE_WEIGHTS: Readonly<Record<string, number>> = Object.freeze({
  view: 1,
  click: 2,
  cart: 4,
  'add-to-cart': 4,
  carts: 4,
  clicks: 2,
  order: 8,
  orders: 8,
  purchase: 8,
});

/** Picks the rows `rows` (indices into `log`) as a new log. */
export function selectRows(log: InteractionLog, rows: Int32Array): InteractionLog {
  const n = rows.length;
  const out = {
    user: new Int32Array(n),
    item: new Int32Array(n),
    time: new Float64Array(n),
    type: new Uint8Array(n),
    value: new Float32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const r = rows[i] as number;
    out.user[i] = log.user[r] as number;
    out.item[i] = log.item[r] as number;
    out.time[i] = log.time[r] as number;
    out.type[i] = log.type[r] as number;
    out.value[i] = log.value[r] as number;
  }
  return out;
}

/** One weight per event from its type, age and value. `typeNames[t]` names type index t. */
export function eventWeights(
  log: InteractionLog,
  typeNames: readonly string[],
  params: WeightingParams = {},
): Float32Array {
  const n = log.user.length;
  const byType = new Float64Array(Math.max(1, typeNames.length));
  const fallback = params.defaultTypeWeight ?? 1;
  const table = params.typeWeights ?? DEFAULT_TYPE_WEIGHTS;
  for (let t = 0; t < typeNames.length; t++) {
    const w = table[typeNames[t] as string];
    byType[t] = w === undefined ? fallback : w;
  }
  // A log with a single event type (e.g. purchases only) weighs 1 whatever the table says, so alpha keeps one
  // meaning across data sets.
  if (typeNames.length <= 1) byType.fill(1);
  let newest = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if ((log.time[i] as number) > newest) newest = log.time[i] as number;
  const halfLifeMs = (params.halfLifeDays ?? 0) * DAY_MS;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let w = byType[log.type[i] as number] as number;
    if (halfLifeMs > 0) w *= 0.5 ** ((newest - (log.time[i] as number)) / halfLifeMs);
    if (params.useValue) w *= Math.log1p(Math.max(0, log.value[i] as number));
    out[i] = w;
  }
  return out;
}

function allocInt32(n: number, shared: boolean): Int32Array {
  return shared ? new Int32Array(new SharedArrayBuffer(Math.max(1, n) * 4), 0, n) : new Int32Array(n);
}

function allocFloat32(n: number, shared: boolean): Float32Array {
  return shared ? new Float32Array(new SharedArrayBuffer(Math.max(1, n) * 4), 0, n) : new Float32Array(n);
}

/**
 * Builds a CSR matrix from coordinate triples, summing duplicates of the same (row, col). Columns within a row
 * keep first-seen order. `shared` allocates on SharedArrayBuffer so worker threads can read it without a copy.
 */
export function buildCsr(
  rows: number,
  cols: number,
  rowIdx: Int32Array,
  colIdx: Int32Array,
  values: Float32Array,
  shared = false,
): Csr {
  const n = rowIdx.length;
  // Counting sort by row: O(nnz), no comparisons.
  const start = new Int32Array(rows + 1);
  for (let i = 0; i < n; i++) {
    const r = (rowIdx[i] as number) + 1;
    start[r] = (start[r] as number) + 1;
  }
  for (let r = 0; r < rows; r++) start[r + 1] = (start[r + 1] as number) + (start[r] as number);
  const fill = start.slice(0, rows);
  const sortedCol = new Int32Array(n);
  const sortedVal = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rowIdx[i] as number;
    const at = fill[r] as number;
    fill[r] = at + 1;
    sortedCol[at] = colIdx[i] as number;
    sortedVal[at] = values[i] as number;
  }
  // Merge duplicates row by row; `seen[c]` remembers where column c landed in the current row.
  const seen = new Int32Array(cols).fill(-1);
  const indptr = allocInt32(rows + 1, shared);
  let w = 0;
  for (let r = 0; r < rows; r++) {
    const rowStart = w;
    indptr[r] = rowStart;
    for (let i = start[r] as number, end = start[r + 1] as number; i < end; i++) {
      const c = sortedCol[i] as number;
      const at = seen[c] as number;
      if (at >= rowStart) {
        sortedVal[at] = (sortedVal[at] as number) + (sortedVal[i] as number);
      } else {
        seen[c] = w;
        sortedCol[w] = c;
        sortedVal[w] = sortedVal[i] as number;
        w++;
      }
    }
  }
  indptr[rows] = w;
  const indices = allocInt32(w, shared);
  const data = allocFloat32(w, shared);
  indices.set(sortedCol.subarray(0, w));
  data.set(sortedVal.subarray(0, w));
  return { rows, cols, indptr, indices, data };
}

/** The transpose of a CSR matrix (e.g. item → users from user → items). */
export function transposeCsr(m: Csr, shared = false): Csr {
  const nnz = m.indptr[m.rows] as number;
  const indptr = allocInt32(m.cols + 1, shared);
  for (let i = 0; i < nnz; i++) {
    const c = (m.indices[i] as number) + 1;
    indptr[c] = (indptr[c] as number) + 1;
  }
  for (let c = 0; c < m.cols; c++) indptr[c + 1] = (indptr[c + 1] as number) + (indptr[c] as number);
  const fill = indptr.slice(0, m.cols);
  const indices = allocInt32(nnz, shared);
  const data = allocFloat32(nnz, shared);
  for (let r = 0; r < m.rows; r++) {
    for (let i = m.indptr[r] as number, end = m.indptr[r + 1] as number; i < end; i++) {
      const c = m.indices[i] as number;
      const at = fill[c] as number;
      fill[c] = at + 1;
      indices[at] = r;
      data[at] = m.data[i] as number;
    }
  }
  return { rows: m.cols, cols: m.rows, indptr, indices, data };
}

/** A copy of `m` whose data goes through `f` (the indices are shared with `m` unless `shared` asks for copies). */
export function mapCsr(m: Csr, f: (v: number) => number, shared = false): Csr {
  const data = allocFloat32(m.data.length, shared);
  for (let i = 0; i < data.length; i++) data[i] = f(m.data[i] as number);
  if (!shared) return { ...m, data };
  const indptr = allocInt32(m.indptr.length, true);
  indptr.set(m.indptr);
  const indices = allocInt32(m.indices.length, true);
  indices.set(m.indices);
  return { rows: m.rows, cols: m.cols, indptr, indices, data };
}

/** User → item matrix of summed event weights from a log. */
export function userItemMatrix(
  log: InteractionLog,
  users: number,
  items: number,
  weights: Float32Array,
  shared = false,
): Csr {
  return buildCsr(users, items, log.user, log.item, weights, shared);
}

/**
 * For every entry of `history` (the user × item matrix built from `log`), how many days before the user's
 * newest event in `log` they last touched that item: what a recency-weighted history multiplies by (see
 * `recencyWeight`). Aligned with `history.indices`; an entry no log row names gets age 0.
 */
export function historyAges(log: InteractionLog, history: Csr): Float32Array {
  const nnz = history.indptr[history.rows] as number;
  const last = new Float64Array(nnz).fill(Number.NEGATIVE_INFINITY);
  // Log rows grouped by user (counting sort), so each user's row of `history` is indexed once.
  const start = new Int32Array(history.rows + 1);
  for (let i = 0; i < log.user.length; i++) {
    const u = (log.user[i] as number) + 1;
    start[u] = (start[u] as number) + 1;
  }
  for (let u = 0; u < history.rows; u++) start[u + 1] = (start[u + 1] as number) + (start[u] as number);
  const fill = start.slice(0, history.rows);
  const byUser = new Int32Array(log.user.length);
  for (let i = 0; i < log.user.length; i++) {
    const u = log.user[i] as number;
    byUser[fill[u] as number] = i;
    fill[u] = (fill[u] as number) + 1;
  }
  const position = new Int32Array(history.cols).fill(-1);
  const ages = new Float32Array(nnz);
  for (let u = 0; u < history.rows; u++) {
    const from = history.indptr[u] as number;
    const to = history.indptr[u + 1] as number;
    for (let p = from; p < to; p++) position[history.indices[p] as number] = p;
    let newest = Number.NEGATIVE_INFINITY;
    for (let r = start[u] as number; r < (start[u + 1] as number); r++) {
      const i = byUser[r] as number;
      const p = position[log.item[i] as number] as number;
      const t = log.time[i] as number;
      if (p >= from && t > (last[p] as number)) last[p] = t;
      if (t > newest) newest = t;
    }
    for (let p = from; p < to; p++) {
      const t = last[p] as number;
      ages[p] = t === Number.NEGATIVE_INFINITY ? 0 : (newest - t) / DAY_MS;
      position[history.indices[p] as number] = -1;
    }
  }
  return ages;
}

/**
 * The weight of a history item last touched `ageDays` before the shopper's newest event: halved every
 * `halfLifeDays`; 1 when the half-life is 0 (off) or the age unknown.
 */
export function recencyWeight(ageDays: number | undefined, halfLifeDays: number): number {
  return halfLifeDays > 0 && ageDays !== undefined && ageDays > 0 ? 0.5 ** (ageDays / halfLifeDays) : 1;
}
