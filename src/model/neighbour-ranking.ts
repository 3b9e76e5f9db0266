// Serving an item-to-item model: a shopper's recent weighted history times the version's neighbour table,
// ranked, with the history item behind each candidate ("because you viewed X"). O(history × N) per shopper
// plus a sort of the items the history reaches, so it runs per request, as fresh as the history itself.
import type { NeighbourTable } from './neighbour-table.ts';

/** The items a shopper's history reaches through the table, best first. */
export interface HistoryRanking {
  /** Item rows (the version's item order), by score descending; ties by row. At most the `limit` asked. */
  readonly items: Int32Array;
  /** How many items the history reached in all: more than `items` holds when a limit cut the ranking. */
  readonly reached: number;
  readonly scores: Float32Array;
  /** For each, the history item whose row contributed the most weight to its score. */
  readonly anchors: Int32Array;
}

/** Per-item scratch for `rankHistory`, one per table; left clean after each call so it can be reused. */
export interface RankingScratch {
  readonly scores: Float32Array;
  readonly best: Float32Array;
  /** -1 = not reached by this call (yet). */
  readonly anchor: Int32Array;
}

export function makeRankingScratch(items: number): RankingScratch {
  return { scores: new Float32Array(items), best: new Float32Array(items), anchor: new Int32Array(items).fill(-1) };
}

/**
 * Ranks the items `history` (item rows, with their weights) reaches: score = Σ weight × table weight, as
 * `scoreHistory` sums it, and the anchor is the history item of the largest single contribution. History
 * entries out of the table's range or with a weight ≤ 0 count for nothing. With `limit`, only the best
 * `limit` items are ranked (a heap: a list needs a few dozen of the thousands 50 rows reach, and sorting
 * them all was most of the cost); the order is total (ties by row), so a larger limit extends the same prefix.
 */
export function rankHistory(
  table: NeighbourTable,
  history: Int32Array,
  weights: Float32Array,
  scratch: RankingScratch = makeRankingScratch(table.items),
  limit = Number.POSITIVE_INFINITY,
): HistoryRanking {
  const { scores, best, anchor } = scratch;
  const reached: number[] = [];
  for (let h = 0; h < history.length; h++) {
    const item = history[h] as number;
    const w = weights[h] as number;
    if (item < 0 || item >= table.items || !(w > 0)) continue;
    for (let p = table.indptr[item] as number; p < (table.indptr[item + 1] as number); p++) {
      const j = table.indices[p] as number;
      const contribution = w * (table.weights[p] as number);
      if ((anchor[j] as number) < 0) {
        reached.push(j);
        scores[j] = contribution;
        best[j] = contribution;
        anchor[j] = item;
      } else {
        scores[j] = (scores[j] as number) + contribution;
        if (contribution > (best[j] as number)) {
          best[j] = contribution;
          anchor[j] = item;
        }
      }
    }
  }
  const before = (a: number, b: number) => (scores[b] as number) - (scores[a] as number) || a - b;
  const ranked = reached.length <= limit ? reached : selectBest(reached, limit, scores);
  ranked.sort(before);
  const n = ranked.length;
  const out = {
    items: new Int32Array(n),
    reached: reached.length,
    scores: new Float32Array(n),
    anchors: new Int32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const j = ranked[i] as number;
    out.items[i] = j;
    out.scores[i] = scores[j] as number;
    out.anchors[i] = anchor[j] as number;
  }
  for (const j of reached) {
    scores[j] = 0;
    best[j] = 0;
    anchor[j] = -1;
  }
  return out;
}

/** The best `limit` of `rows` by score (ties: lower row), unordered: a min-heap whose root is the worst kept. */
function selectBest(rows: readonly number[], limit: number, scores: Float32Array): number[] {
  // a is worse than b: lower score, or the same score and a higher row.
  const worse = (a: number, b: number) =>
    (scores[a] as number) < (scores[b] as number) || ((scores[a] as number) === (scores[b] as number) && a > b);
  const heap: number[] = [];
  for (const row of rows) {
    if (heap.length < limit) {
      let c = heap.length;
      heap.push(row);
      while (c > 0) {
        const parent = (c - 1) >> 1;
        if (!worse(row, heap[parent] as number)) break;
        heap[c] = heap[parent] as number;
        c = parent;
      }
      heap[c] = row;
    } else if (worse(heap[0] as number, row)) {
      let c = 0;
      for (;;) {
        const left = 2 * c + 1;
        if (left >= limit) break;
        const right = left + 1;
        const child = right < limit && worse(heap[right] as number, heap[left] as number) ? right : left;
        if (!worse(heap[child] as number, row)) break;
        heap[c] = heap[child] as number;
        c = child;
      }
      heap[c] = row;
    }
  }
  return heap;
}

/** One item's score for a history (what `rankHistory` gives it), or 0 when no history row reaches it. */
export function historyScore(table: NeighbourTable, history: Int32Array, weights: Float32Array, item: number): number {
  let score = 0;
  for (let h = 0; h < history.length; h++) {
    const row = history[h] as number;
    const w = weights[h] as number;
    if (row < 0 || row >= table.items || !(w > 0)) continue;
    for (let p = table.indptr[row] as number; p < (table.indptr[row + 1] as number); p++) {
      if (table.indices[p] === item) {
        score += w * (table.weights[p] as number);
        break;
      }
    }
  }
  return score;
}

/** How a history's summed event weights become the weights that multiply the table. */
export type HistoryWeighting = 'binary' | 'summed' | 'log';

/** Applies `weighting` to one summed event weight (> 0). */
export function historyWeight(weighting: HistoryWeighting, summed: number): number {
  if (weighting === 'binary') return 1;
  if (weighting === 'log') return Math.log1p(summed);
  return summed;
}
