// Ranking metrics of the evaluation protocol, per user, plus an accumulator that averages them over users and
// tracks catalogue coverage. Gains are binary: an item is relevant when it is in the user's held-out set.

/** Hits among the first k of `ranked` that are in `relevant`. */
function hitsAt(ranked: ArrayLike<number>, relevant: ReadonlySet<number>, k: number): number {
  let hits = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (relevant.has(ranked[i] as number)) hits++;
  return hits;
}

/** Precision@k = hits in the top k / k (a shorter list still divides by k). */
export function precisionAtK(ranked: ArrayLike<number>, relevant: ReadonlySet<number>, k: number): number {
  return hitsAt(ranked, relevant, k) / k;
}

/** Recall@k = hits / min(k, |relevant|), so a perfect list scores 1 even when |relevant| > k. */
export function recallAtK(ranked: ArrayLike<number>, relevant: ReadonlySet<number>, k: number): number {
  const denominator = Math.min(k, relevant.size);
  return denominator === 0 ? 0 : hitsAt(ranked, relevant, k) / denominator;
}

/** NDCG@k with binary gains: Σ 1/log2(rank+1) over hits, over the ideal Σ for min(k, |relevant|) hits. */
export function ndcgAtK(ranked: ArrayLike<number>, relevant: ReadonlySet<number>, k: number): number {
  let dcg = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) {
    if (relevant.has(ranked[i] as number)) dcg += 1 / Math.log2(i + 2);
  }
  let ideal = 0;
  for (let i = 0; i < Math.min(k, relevant.size); i++) ideal += 1 / Math.log2(i + 2);
  return ideal === 0 ? 0 : dcg / ideal;
}

/** AP@k = Σ over hits at rank i of precision@i, divided by min(k, |relevant|) (as recall@k is). */
export function averagePrecisionAtK(ranked: ArrayLike<number>, relevant: ReadonlySet<number>, k: number): number {
  const denominator = Math.min(k, relevant.size);
  if (denominator === 0) return 0;
  let hits = 0;
  let sum = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) {
    if (relevant.has(ranked[i] as number)) {
      hits++;
      sum += hits / (i + 1);
    }
  }
  return sum / denominator;
}

/** Averages of the metrics over the users added, and the share of the catalogue shown in any top-k list. */
export interface RankingSummary {
  readonly precision: number;
  readonly recall: number;
  readonly ndcg: number;
  readonly map: number;
  readonly coverage: number;
  /** Share of the top-k slots filled by the 1 % most popular items (0 when no popularity mask was given). */
  readonly popularShare: number;
  readonly users: number;
}

/** Accumulates per-user metrics; `catalogue` is the number of items a list could have shown. */
export class RankingMetrics {
  private precision = 0;
  private recall = 0;
  private ndcg = 0;
  private map = 0;
  private users = 0;
  private slots = 0;
  private popularSlots = 0;
  private readonly shown: Uint8Array;

  /** `popular[i]` = 1 marks item i as one of the most popular (see {@link popularMask}). */
  constructor(
    readonly k: number,
    private readonly catalogue: number,
    private readonly popular?: Uint8Array,
  ) {
    this.shown = new Uint8Array(catalogue);
  }

  /** Adds one user's ranked list (item indices, best first) against their held-out items. */
  add(ranked: ArrayLike<number>, relevant: ReadonlySet<number>): void {
    if (relevant.size === 0) return;
    this.precision += precisionAtK(ranked, relevant, this.k);
    this.recall += recallAtK(ranked, relevant, this.k);
    this.ndcg += ndcgAtK(ranked, relevant, this.k);
    this.map += averagePrecisionAtK(ranked, relevant, this.k);
    for (let i = 0; i < Math.min(this.k, ranked.length); i++) {
      const item = ranked[i] as number;
      this.shown[item] = 1;
      this.slots++;
      if (this.popular?.[item]) this.popularSlots++;
    }
    this.users++;
  }

  summary(): RankingSummary {
    const n = Math.max(1, this.users);
    let shown = 0;
    for (let i = 0; i < this.shown.length; i++) shown += this.shown[i] as number;
    return {
      precision: this.precision / n,
      recall: this.recall / n,
      ndcg: this.ndcg / n,
      map: this.map / n,
      coverage: this.catalogue === 0 ? 0 : shown / this.catalogue,
      popularShare: this.slots === 0 ? 0 : this.popularSlots / this.slots,
      users: this.users,
    };
  }
}

/**
 * Marks the `fraction` (at least one) of items with the most users in `userItems` (a CSR's indptr/indices over
 * `items` columns): the "bestsellers" a list can flatten to.
 */
export function popularMask(indices: Int32Array, nnz: number, items: number, fraction = 0.01): Uint8Array {
  const counts = new Float64Array(items);
  for (let e = 0; e < nnz; e++) counts[indices[e] as number] = (counts[indices[e] as number] as number) + 1;
  const order = Array.from({ length: items }, (_, i) => i).sort(
    (a, b) => (counts[b] as number) - (counts[a] as number) || a - b,
  );
  const mask = new Uint8Array(items);
  for (const i of order.slice(0, Math.max(1, Math.ceil(fraction * items)))) mask[i] = 1;
  return mask;
}

/**
 * Writes the indices of the `k` highest scores into `out` (best first) and returns how many it wrote.
 * Scores of -Infinity (excluded items) are never picked; ties go to the lower index.
 */
export function topK(scores: Float32Array, k: number, out: Int32Array): number {
  // A min-heap of size k over (score, index); the root is the weakest kept candidate.
  let size = 0;
  const better = (a: number, b: number) => {
    const sa = scores[a] as number;
    const sb = scores[b] as number;
    return sa > sb || (sa === sb && a < b);
  };
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] as number;
    if (s === Number.NEGATIVE_INFINITY) continue;
    if (size < k) {
      let at = size++;
      out[at] = i;
      while (at > 0) {
        const parent = (at - 1) >> 1;
        if (!better(out[parent] as number, out[at] as number)) break;
        const t = out[parent] as number;
        out[parent] = out[at] as number;
        out[at] = t;
        at = parent;
      }
    } else if (better(i, out[0] as number)) {
      out[0] = i;
      let at = 0;
      for (;;) {
        const l = 2 * at + 1;
        const r = l + 1;
        let weakest = at;
        if (l < size && better(out[weakest] as number, out[l] as number)) weakest = l;
        if (r < size && better(out[weakest] as number, out[r] as number)) weakest = r;
        if (weakest === at) break;
        const t = out[weakest] as number;
        out[weakest] = out[at] as number;
        out[at] = t;
        at = weakest;
      }
    }
  }
  // Heap → best-first order.
  const picked = Array.from(out.subarray(0, size)).sort((a, b) => (better(a, b) ? -1 : 1));
  out.set(picked);
  return size;
}
