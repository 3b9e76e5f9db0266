// A sparse item × item table: each item's strongest N neighbours with their weights, rows in the order of the
// version's item ids. It is how item-to-item models (EASE, item-kNN, a blend of them with ALS) serve: a
// shopper's scores are their weighted recent history times this table, O(history × N) per shopper, cheap
// enough to recompute on every event or request, so such a model is as fresh as ALS fold-in.

/** Compressed sparse rows: row i's neighbours are `indices[indptr[i] .. indptr[i+1])`, strongest first. */
export interface NeighbourTable {
  /** Rows: the version's item count. */
  readonly items: number;
  /** The cap on neighbours per row, N. */
  readonly neighbours: number;
  readonly indptr: Int32Array;
  readonly indices: Int32Array;
  readonly weights: Float32Array;
}

/**
 * Builds the table from a dense scorer of rows: `row(i, out)` writes item i's weight towards every item into
 * `out` (length `items`). Keeps the `neighbours` largest positive weights of each row, never the item itself.
 */
export function neighbourTableFromRows(
  items: number,
  neighbours: number,
  row: (item: number, out: Float32Array) => void,
): NeighbourTable {
  const indptr = new Int32Array(items + 1);
  const indices = new Int32Array(items * neighbours);
  const weights = new Float32Array(items * neighbours);
  const dense = new Float32Array(items);
  // Min-heap of the strongest weights kept so far (root = weakest kept), so a row costs O(items · log N).
  const heapIdx = new Int32Array(neighbours);
  const heapVal = new Float32Array(neighbours);
  let at = 0;
  for (let i = 0; i < items; i++) {
    dense.fill(0);
    row(i, dense);
    let size = 0;
    for (let j = 0; j < items; j++) {
      const w = dense[j] as number;
      if (j === i || !(w > 0)) continue;
      if (size < neighbours) {
        siftUp(heapIdx, heapVal, size++, j, w);
      } else if (w > (heapVal[0] as number)) {
        siftDown(heapIdx, heapVal, size, j, w);
      }
    }
    // Pop weakest first into the row's slots from the back, so the row reads strongest first.
    for (let end = size; end > 0; end--) {
      indices[at + end - 1] = heapIdx[0] as number;
      weights[at + end - 1] = heapVal[0] as number;
      const lastIdx = heapIdx[end - 1] as number;
      const lastVal = heapVal[end - 1] as number;
      if (end > 1) siftDown(heapIdx, heapVal, end - 1, lastIdx, lastVal);
    }
    at += size;
    indptr[i + 1] = at;
  }
  return { items, neighbours, indptr, indices: indices.slice(0, at), weights: weights.slice(0, at) };
}

function siftUp(idx: Int32Array, val: Float32Array, slot: number, item: number, weight: number): void {
  let c = slot;
  while (c > 0) {
    const parent = (c - 1) >> 1;
    if ((val[parent] as number) <= weight) break;
    idx[c] = idx[parent] as number;
    val[c] = val[parent] as number;
    c = parent;
  }
  idx[c] = item;
  val[c] = weight;
}

/** Replaces the root with (item, weight) and restores the heap of `size` entries. */
function siftDown(idx: Int32Array, val: Float32Array, size: number, item: number, weight: number): void {
  let c = 0;
  for (;;) {
    const left = 2 * c + 1;
    if (left >= size) break;
    const right = left + 1;
    const child = right < size && (val[right] as number) < (val[left] as number) ? right : left;
    if ((val[child] as number) >= weight) break;
    idx[c] = idx[child] as number;
    val[c] = val[child] as number;
    c = child;
  }
  idx[c] = item;
  val[c] = weight;
}

/**
 * Adds the shopper's scores into `out` (length `table.items`): Σ over their history of weight × row. Items
 * no history row reaches keep what `out` held; `touched` (optional) collects the items a row reached, so a
 * caller can rank only those instead of the whole catalogue.
 */
export function scoreHistory(
  table: NeighbourTable,
  history: Int32Array,
  historyWeights: Float32Array,
  out: Float32Array,
  touched?: Set<number>,
): void {
  for (let h = 0; h < history.length; h++) {
    const item = history[h] as number;
    if (item < 0 || item >= table.items) continue;
    const w = historyWeights[h] as number;
    for (let p = table.indptr[item] as number; p < (table.indptr[item + 1] as number); p++) {
      const j = table.indices[p] as number;
      out[j] = (out[j] as number) + w * (table.weights[p] as number);
      touched?.add(j);
    }
  }
}

const HEADER_INTS = 3;

/** Bytes for storage: [items, neighbours, nnz] as int32, then indptr, indices (int32) and weights (float32). */
export function encodeNeighbourTable(table: NeighbourTable): Uint8Array<ArrayBuffer> {
  const nnz = table.indices.length;
  const ints = HEADER_INTS + table.indptr.length + nnz;
  const bytes = new Uint8Array((ints + nnz) * 4);
  const view = new Int32Array(bytes.buffer, 0, ints);
  view[0] = table.items;
  view[1] = table.neighbours;
  view[2] = nnz;
  view.set(table.indptr, HEADER_INTS);
  view.set(table.indices, HEADER_INTS + table.indptr.length);
  new Float32Array(bytes.buffer, ints * 4, nnz).set(table.weights);
  return bytes;
}

/** The table `encodeNeighbourTable` wrote; fails with what is wrong when the bytes are not one. */
export function decodeNeighbourTable(stored: Uint8Array): NeighbourTable {
  // Copy: stored bytes (from Postgres or Redis) need not be 4-byte aligned.
  const bytes = new Uint8Array(stored);
  if (bytes.byteLength < HEADER_INTS * 4) throw new Error('neighbour table: too short for its header');
  const header = new Int32Array(bytes.buffer, 0, HEADER_INTS);
  const items = header[0] as number;
  const neighbours = header[1] as number;
  const nnz = header[2] as number;
  const expected = (HEADER_INTS + items + 1 + 2 * nnz) * 4;
  if (items < 0 || nnz < 0 || bytes.byteLength !== expected)
    throw new Error(`neighbour table: ${bytes.byteLength} bytes where its header says ${expected}`);
  let offset = HEADER_INTS * 4;
  const indptr = new Int32Array(bytes.buffer, offset, items + 1);
  offset += (items + 1) * 4;
  const indices = new Int32Array(bytes.buffer, offset, nnz);
  offset += nnz * 4;
  const weights = new Float32Array(bytes.buffer, offset, nnz);
  return { items, neighbours, indptr, indices, weights };
}
