import type { AnnSpace, ItemMeta, SearchFilter, SearchHit } from './types.ts';

/** Decides per label whether an item may be returned (removed items are checked separately). */
export type LabelFilter = (label: number) => boolean;

/** Items sampled to estimate which fraction of the catalogue a metadata filter or predicate lets through. */
const FILTER_SAMPLE = 256;

/**
 * What both indexes share: the string id ↔ uint32 label map, a flat copy of every vector, per-item metadata and
 * removal flags. Labels are slot numbers, assigned in insertion order and never reused, so they also index the
 * typed arrays. Vectors are kept here (and not only inside hnswlib) because exact search over an eligible subset,
 * exact re-scoring and persistence all need them as one Float32Array.
 */
export class ItemStore {
  readonly space: AnnSpace;
  readonly dim: number;
  /** label → id. */
  readonly ids: string[] = [];
  /** id → label. */
  readonly labels = new Map<string, number>();
  /** label → metadata; write through `setMeta` so the category lists stay in step. */
  readonly meta: (ItemMeta | undefined)[] = [];
  /** category → labels in it: a category filter scans only these on the exact path. */
  private readonly byCategory = new Map<string, Set<number>>();
  /**
   * The same labels as flat arrays for the exact scan, longest vector first with the lengths beside them, so a
   * scan can stop once no remaining item can beat its k-th best (Cauchy–Schwarz: q·v ≤ |q||v|). Rebuilt on the
   * next search after a category's membership or one of its vectors changes. One entry per category, as
   * `byCategory`.
   */
  private readonly categoryLabels = new Map<string, { labels: Int32Array; norms: Float64Array }>();
  /** label × dim, row-major; rows are unit length in cosine space. */
  vectors: Float32Array;
  /** label → 1 when removed. */
  removed: Uint8Array;
  removedCount = 0;

  constructor(space: AnnSpace, dim: number, capacity: number) {
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${dim}`);
    this.space = space;
    this.dim = dim;
    const slots = Math.max(1, Math.ceil(capacity));
    this.vectors = new Float32Array(slots * dim);
    this.removed = new Uint8Array(slots);
  }

  get count(): number {
    return this.ids.length;
  }

  get live(): number {
    return this.ids.length - this.removedCount;
  }

  get capacity(): number {
    return this.removed.length;
  }

  reserve(capacity: number): void {
    if (capacity <= this.capacity) return;
    const vectors = new Float32Array(capacity * this.dim);
    vectors.set(this.vectors);
    this.vectors = vectors;
    const removed = new Uint8Array(capacity);
    removed.set(this.removed);
    this.removed = removed;
  }

  isLive(id: string): boolean {
    const label = this.labels.get(id);
    return label !== undefined && this.removed[label] === 0;
  }

  /**
   * Stores the vector under the id's label, assigning a new label for a new id. Returns the label and whether it
   * is new. The caller has reserved room for a new label.
   */
  put(id: string, vector: ArrayLike<number>, meta: ItemMeta | undefined): { label: number; isNew: boolean } {
    if (vector.length !== this.dim)
      throw new RangeError(`vector for ${id} has ${vector.length} dims, expected ${this.dim}`);
    let label = this.labels.get(id);
    const isNew = label === undefined;
    if (label === undefined) {
      label = this.ids.length;
      if (label >= this.capacity) throw new RangeError('ItemStore is full: reserve() before put()');
      if (label > 0xffffffff) throw new RangeError('more than 2^32 items');
      this.ids.push(id);
      this.labels.set(id, label);
      this.meta.push(undefined);
      this.setMeta(label, meta);
    } else {
      if (meta !== undefined) this.setMeta(label, meta);
      if (this.removed[label] === 1) {
        this.removed[label] = 0;
        this.removedCount--;
      }
    }
    const category = this.meta[label]?.category;
    if (category !== undefined) this.categoryLabels.delete(category);
    const offset = label * this.dim;
    for (let j = 0; j < this.dim; j++) this.vectors[offset + j] = vector[j] as number;
    if (this.space === 'cosine') normaliseInPlace(this.vectors, offset, this.dim);
    return { label, isNew };
  }

  setMeta(label: number, meta: ItemMeta | undefined): void {
    const before = this.meta[label]?.category;
    const after = meta?.category;
    this.meta[label] = meta;
    if (before === after) return;
    if (before !== undefined) {
      this.byCategory.get(before)?.delete(label);
      this.categoryLabels.delete(before);
    }
    if (after !== undefined) {
      this.categoryLabels.delete(after);
      let members = this.byCategory.get(after);
      if (!members) {
        members = new Set();
        this.byCategory.set(after, members);
      }
      members.add(label);
    }
  }

  /** Flags the label removed; returns it, or undefined when unknown or already removed. */
  markRemoved(id: string): number | undefined {
    const label = this.labels.get(id);
    if (label === undefined || this.removed[label] === 1) return undefined;
    this.removed[label] = 1;
    this.removedCount++;
    return label;
  }

  /** Clears the removed flag; returns the label, or undefined when unknown or not removed. */
  unmarkRemoved(id: string): number | undefined {
    const label = this.labels.get(id);
    if (label === undefined || this.removed[label] === 0) return undefined;
    this.removed[label] = 0;
    this.removedCount--;
    return label;
  }

  /** The query as the index compares it: a Float32Array, unit length in cosine space. */
  prepareQuery(query: ArrayLike<number>): Float32Array {
    if (query.length !== this.dim) throw new RangeError(`query has ${query.length} dims, expected ${this.dim}`);
    const q = Float32Array.from(query);
    if (this.space === 'cosine') normaliseInPlace(q, 0, this.dim);
    return q;
  }

  /** Similarity of a prepared query with the stored row of `label` (float64 accumulation). */
  score(q: Float32Array, label: number): number {
    return this.dot(q, label);
  }

  /**
   * Compiles a filter into one label test, or null when the filter lets everything through. Removed items are
   * not part of it: each index excludes them its own way.
   */
  compileFilter(filter: SearchFilter | undefined): LabelFilter | null {
    if (!filter) return null;
    const tests: LabelFilter[] = [];
    const excluded = this.excludedLabels(filter);
    if (excluded.size > 0) tests.push((label) => !excluded.has(label));
    if (filter.inStockOnly) tests.push((label) => this.meta[label]?.inStock !== false);
    if (filter.categories !== undefined) {
      const categories = new Set(filter.categories);
      tests.push((label) => {
        const category = this.meta[label]?.category;
        return category !== undefined && categories.has(category);
      });
    }
    const { minPrice, maxPrice } = filter;
    if (minPrice !== undefined || maxPrice !== undefined) {
      const lo = minPrice ?? Number.NEGATIVE_INFINITY;
      const hi = maxPrice ?? Number.POSITIVE_INFINITY;
      tests.push((label) => {
        const price = this.meta[label]?.price;
        return price !== undefined && price >= lo && price <= hi;
      });
    }
    const predicate = filter.predicate;
    if (predicate) tests.push((label) => predicate(this.ids[label] as string, this.meta[label]));
    if (tests.length === 0) return null;
    if (tests.length === 1) return tests[0] as LabelFilter;
    return (label) => {
      for (const test of tests) if (!test(label)) return false;
      return true;
    };
  }

  /**
   * Fraction of live items that pass `allow`. Exact for an exclude-only filter (counted from the set); for
   * metadata or predicates estimated from an evenly spaced sample of live labels, which costs a fixed few
   * hundred calls instead of a pass over the catalogue.
   */
  eligibleFraction(filter: SearchFilter | undefined, allow: LabelFilter | null): number {
    const live = this.live;
    if (live === 0) return 0;
    if (!allow || !filter) return 1;
    const onlyExclude =
      !filter.inStockOnly &&
      filter.categories === undefined &&
      filter.minPrice === undefined &&
      filter.maxPrice === undefined &&
      !filter.predicate;
    if (onlyExclude) {
      let excludedLive = 0;
      for (const label of this.excludedLabels(filter)) if (this.removed[label] === 0) excludedLive++;
      return (live - excludedLive) / live;
    }
    const count = this.count;
    const step = Math.max(1, count / FILTER_SAMPLE);
    let seen = 0;
    let passed = 0;
    for (let x = 0; x < count; x += step) {
      const label = Math.floor(x);
      if (this.removed[label] === 1) continue;
      seen++;
      if (allow(label)) passed++;
    }
    return seen === 0 ? 0 : passed / seen;
  }

  /**
   * Exact top-k over live items that pass `allow`, best first: the oracle and the small-eligible-set fallback.
   * With a category filter only the labels of those categories are visited.
   */
  exactSearch(q: Float32Array, k: number, allow: LabelFilter | null, filter?: SearchFilter): SearchHit[] {
    const top = new TopK(k);
    if (filter?.categories !== undefined) {
      let qNorm = 0;
      for (let j = 0; j < this.dim; j++) qNorm += (q[j] as number) * (q[j] as number);
      qNorm = Math.sqrt(qNorm);
      for (const category of new Set(filter.categories)) {
        const members = this.labelsIn(category);
        if (members) this.scan(q, members.labels, members.labels.length, top, allow, members.norms, qNorm);
      }
    } else {
      this.scan(q, null, this.count, top, allow);
    }
    return top.sorted().map(({ label, score }) => ({ id: this.ids[label] as string, score }));
  }

  /**
   * Offers `labels[0 … n)` (or labels 0 … n−1 when `labels` is null) to `top`. The score first: a filter (a
   * caller's predicate above all) costs more than a dot product, and only an item that would enter the top k
   * needs it; same result as filtering first. With `norms` (of `labels`, longest first) the scan ends once
   * `qNorm × norm` cannot beat the k-th best.
   */
  private scan(
    q: Float32Array,
    labels: Int32Array | null,
    n: number,
    top: TopK,
    allow: LabelFilter | null,
    norms?: Float64Array,
    qNorm = 0,
  ): void {
    const removed = this.removed;
    for (let x = 0; x < n; x++) {
      if (norms !== undefined && top.rejects(qNorm * (norms[x] as number))) return;
      const label = labels === null ? x : (labels[x] as number);
      if (removed[label] === 1) continue;
      const score = this.dot(q, label);
      if (top.rejects(score)) continue;
      if (allow !== null && !allow(label)) continue;
      top.offer(label, score);
    }
  }

  /** A category's labels, longest vector first, and their lengths (built on first use after a change). */
  private labelsIn(category: string): { labels: Int32Array; norms: Float64Array } | undefined {
    let sorted = this.categoryLabels.get(category);
    if (sorted === undefined) {
      const members = this.byCategory.get(category);
      if (!members || members.size === 0) return undefined;
      const unsorted = Int32Array.from(members);
      const length = new Float64Array(unsorted.length);
      unsorted.forEach((label, x) => {
        let sum = 0;
        for (let j = 0, at = label * this.dim; j < this.dim; j++, at++)
          sum += (this.vectors[at] as number) * (this.vectors[at] as number);
        length[x] = Math.sqrt(sum);
      });
      // Ties by label, so the visiting order (and which of equal scores enters the top k) is reproducible.
      const order = Array.from(unsorted.keys()).sort(
        (a, b) => (length[b] as number) - (length[a] as number) || (unsorted[a] as number) - (unsorted[b] as number),
      );
      const labels = Int32Array.from(order, (x) => unsorted[x] as number);
      // Rounded up a hair, so float rounding in the dot product can never make the bound cut a true top item.
      const norms = Float64Array.from(order, (x) => (length[x] as number) * (1 + 1e-9) + 1e-12);
      sorted = { labels, norms };
      this.categoryLabels.set(category, sorted);
    }
    return sorted;
  }

  /** Inner product of a prepared query with a stored row: the hot loop, unrolled by four. */
  private dot(q: Float32Array, label: number): number {
    const v = this.vectors;
    const dim = this.dim;
    const offset = label * dim;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let j = 0;
    for (; j + 3 < dim; j += 4) {
      s0 += (q[j] as number) * (v[offset + j] as number);
      s1 += (q[j + 1] as number) * (v[offset + j + 1] as number);
      s2 += (q[j + 2] as number) * (v[offset + j + 2] as number);
      s3 += (q[j + 3] as number) * (v[offset + j + 3] as number);
    }
    for (; j < dim; j++) s0 += (q[j] as number) * (v[offset + j] as number);
    return s0 + s1 + s2 + s3;
  }

  private excludedLabels(filter: SearchFilter): Set<number> {
    const labels = new Set<number>();
    if (!filter.exclude) return labels;
    for (const id of filter.exclude) {
      const label = this.labels.get(id);
      if (label !== undefined) labels.add(label);
    }
    return labels;
  }
}

/** Scales `v[offset … offset+dim)` to unit length; leaves a zero vector alone. */
export function normaliseInPlace(v: Float32Array, offset: number, dim: number): void {
  let norm = 0;
  for (let j = 0; j < dim; j++) {
    const x = v[offset + j] as number;
    norm += x * x;
  }
  if (norm === 0) return;
  const inv = 1 / Math.sqrt(norm);
  for (let j = 0; j < dim; j++) v[offset + j] = (v[offset + j] as number) * inv;
}

/** Keeps the k highest scores seen, as a min-heap on flat typed arrays. */
class TopK {
  private readonly labels: Uint32Array;
  private readonly scores: Float64Array;
  private size = 0;

  constructor(private readonly k: number) {
    this.labels = new Uint32Array(Math.max(0, k));
    this.scores = new Float64Array(Math.max(0, k));
  }

  /** True when `offer(…, score)` would keep nothing: the heap is full and the score is no better than its worst. */
  rejects(score: number): boolean {
    return this.size === this.k && (this.k === 0 || score <= (this.scores[0] as number));
  }

  offer(label: number, score: number): void {
    const { labels, scores } = this;
    if (this.size < this.k) {
      let i = this.size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if ((scores[parent] as number) <= score) break;
        scores[i] = scores[parent] as number;
        labels[i] = labels[parent] as number;
        i = parent;
      }
      scores[i] = score;
      labels[i] = label;
      return;
    }
    if (this.k === 0 || score <= (scores[0] as number)) return;
    let i = 0;
    const n = this.size;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && (scores[right] as number) < (scores[left] as number) ? right : left;
      if ((scores[child] as number) >= score) break;
      scores[i] = scores[child] as number;
      labels[i] = labels[child] as number;
      i = child;
    }
    scores[i] = score;
    labels[i] = label;
  }

  sorted(): { label: number; score: number }[] {
    const out: { label: number; score: number }[] = [];
    for (let i = 0; i < this.size; i++) out.push({ label: this.labels[i] as number, score: this.scores[i] as number });
    // Ties broken by label so both indexes order equal scores the same way.
    return out.sort((a, b) => b.score - a.score || a.label - b.label);
  }
}
