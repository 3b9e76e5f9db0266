// The only module of the project that imports hnswlib-node; everything else goes through AnnIndex.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import hnswlib, { type HierarchicalNSW } from 'hnswlib-node';
import { type BuildInput, checkBuildInput } from './brute-force-index.ts';
import { ItemStore, type LabelFilter } from './item-store.ts';
import {
  type AnnFiles,
  type AnnManifest,
  packFiles,
  readManifest,
  storeFromFiles,
  storeToFiles,
  unpackFiles,
  VECTORS_FILE,
  withTempDir,
  writeFilesTo,
} from './persist.ts';
import { StoreBackedIndex } from './store-backed-index.ts';
import type { AnnIndex, AnnSpace, ItemMeta, SearchFilter, SearchHit } from './types.ts';

const GRAPH_FILE = 'graph.hnsw';

/**
 * Knobs of the HNSW index. The defaults come from `npm run bench -- ann` (100k clustered items × 64 dims); the
 * gateway's config maps its env keys onto these fields.
 */
export interface HnswParams {
  /** Links per node (hnswlib `M`). More: better recall and memory, slower build. */
  M: number;
  /** Candidate list size while building. More: better graph, slower build. */
  efConstruction: number;
  /** Candidate list size while searching (raised to k when smaller). More: better recall, fewer queries/s. */
  ef: number;
  /** Seed for hnswlib's level generator, so builds are reproducible. */
  randomSeed: number;
  /**
   * Below this fraction of eligible items a filtered search scans the eligible items exactly instead of walking
   * the graph, which would visit most of the catalogue to find k of them.
   */
  exactFallbackFraction: number;
}

/**
 * Defaults chosen from `npm run bench -- ann` (100k clustered items × 64 dims, inner product, one thread):
 * ef 64 gives recall@10 0.995 (ef 32: 0.989, ef 16: 0.972) at roughly 100× the exact scan's queries/s; M 16 and
 * efConstruction 200 build in about 25 s. Below 20 % eligible the filtered graph walk lost recall (0.93 at 20 %,
 * 0.87 at 10 %) while an exact scan of 100k items costs about 10 ms, hence exactFallbackFraction 0.2.
 */
export const DEFAULT_HNSW_PARAMS: Readonly<HnswParams> = Object.freeze({
  M: 16,
  efConstruction: 200,
  ef: 64,
  randomSeed: 100,
  exactFallbackFraction: 0.2,
});

/** Eligible fraction at and above which a filtered search keeps the unfiltered ef. */
const FILTER_EF_FRACTION = 0.5;

/** How many times a filtered graph search that came back short is retried with a 4× larger ef. */
const EF_RETRIES = 2;

/**
 * Approximate search over an hnswlib graph. hnswlib compares in its inner-product space; in cosine space the
 * item store hands it unit vectors, so both spaces share one code path and scores are recomputed exactly from
 * the stored vectors.
 *
 * `build`, `upsert` and `search` block the event loop (hnswlib is synchronous): build big indexes in a worker
 * and swap them in with `VersionedIndex`; `loadFrom`/`deserialize` read the graph on libuv's thread pool.
 */
export class HnswIndex extends StoreBackedIndex implements AnnIndex {
  readonly kind = 'hnsw' as const;
  readonly params: Readonly<HnswParams>;
  private currentEf: number;
  /** Saves in flight: hnswlib writes the graph on another thread, so mutating it meanwhile would race. */
  private saving = 0;

  private constructor(
    store: ItemStore,
    private readonly graph: HierarchicalNSW,
    params: Readonly<HnswParams>,
  ) {
    super(store);
    this.params = params;
    this.currentEf = params.ef;
    graph.setEf(params.ef);
  }

  static empty(space: AnnSpace, dim: number, capacity = 1024, params: Partial<HnswParams> = {}): HnswIndex {
    const full = { ...DEFAULT_HNSW_PARAMS, ...params };
    const slots = Math.max(1, Math.ceil(capacity));
    const graph = new hnswlib.HierarchicalNSW('ip', dim);
    graph.initIndex({
      maxElements: slots,
      m: full.M,
      efConstruction: full.efConstruction,
      randomSeed: full.randomSeed,
    });
    return new HnswIndex(new ItemStore(space, dim, slots), graph, full);
  }

  static build(input: BuildInput & { params?: Partial<HnswParams> }): HnswIndex {
    const { ids, vectors, dim } = input;
    checkBuildInput(input);
    const index = HnswIndex.empty(input.space, dim, Math.max(input.capacity ?? 0, ids.length, 1), input.params);
    for (let i = 0; i < ids.length; i++) {
      index.upsert(ids[i] as string, vectors.subarray(i * dim, (i + 1) * dim), input.meta?.[i]);
    }
    return index;
  }

  /** Loads what `saveTo` wrote; the graph is read off the event loop. `ef` overrides the saved one when given. */
  static async loadFrom(
    dir: string,
    overrides: Partial<Pick<HnswParams, 'ef' | 'exactFallbackFraction'>> = {},
  ): Promise<HnswIndex> {
    const manifest = await readManifest(dir);
    if (manifest.kind !== 'hnsw') throw new Error(`expected an hnsw index, found ${manifest.kind}`);
    const store = storeFromFiles(manifest, await readFile(join(dir, VECTORS_FILE)));
    const graph = new hnswlib.HierarchicalNSW('ip', manifest.dim);
    await graph.readIndex(join(dir, GRAPH_FILE));
    if (graph.getCurrentCount() !== store.count) {
      throw new Error(`graph holds ${graph.getCurrentCount()} items but the manifest lists ${store.count}`);
    }
    return new HnswIndex(store, graph, { ...paramsOf(manifest), ...overrides });
  }

  static async deserialize(bytes: Buffer): Promise<HnswIndex> {
    const files = unpackFiles(bytes);
    return withTempDir(async (dir) => {
      await writeFilesTo(dir, files);
      return HnswIndex.loadFrom(dir);
    });
  }

  upsert(id: string, vector: ArrayLike<number>, meta?: ItemMeta): void {
    this.assertWritable();
    if (!this.store.labels.has(id) && this.store.count >= this.store.capacity) {
      // Doubling keeps the amortised cost of resizeIndex (a copy of the graph) constant per insert.
      this.reserve(Math.max(16, this.store.capacity * 2));
    }
    const { label } = this.store.put(id, vector, meta);
    // hnswlib wants a plain array; an existing label is updated in place (and un-deleted) by addPoint itself.
    const offset = label * this.store.dim;
    this.graph.addPoint(Array.from(this.store.vectors.subarray(offset, offset + this.store.dim)), label);
  }

  remove(id: string): boolean {
    this.assertWritable();
    const label = this.store.markRemoved(id);
    if (label === undefined) return false;
    this.graph.markDelete(label);
    return true;
  }

  restore(id: string): boolean {
    this.assertWritable();
    const label = this.store.unmarkRemoved(id);
    if (label === undefined) return false;
    this.graph.unmarkDelete(label);
    return true;
  }

  reserve(capacity: number): void {
    this.assertWritable();
    if (capacity <= this.store.capacity) return;
    this.graph.resizeIndex(capacity);
    this.store.reserve(capacity);
  }

  search(query: ArrayLike<number>, k: number, filter?: SearchFilter): SearchHit[] {
    const store = this.store;
    if (k <= 0 || store.live === 0) return [];
    const q = store.prepareQuery(query);
    const allow = store.compileFilter(filter);
    const fraction = store.eligibleFraction(filter, allow);
    if (allow !== null && fraction < this.params.exactFallbackFraction) return store.exactSearch(q, k, allow, filter);
    // Fewer than `wanted` hits means the walk missed some: with a filter, only an exact scan can prove that fewer
    // than k items qualify, so that is the last resort.
    const wanted = Math.min(k, store.live);
    const plainQuery = Array.from(q);
    // hnswlib keeps walking until ef eligible candidates are held, but recall still sags as eligible items thin
    // out (bench: 20 % eligible needs about 2.5× the ef of an unfiltered search), so scale ef by up to 4×.
    const efScale = Math.min(4, Math.max(1, FILTER_EF_FRACTION / fraction));
    let ef = Math.max(Math.ceil(this.params.ef * efScale), wanted);
    for (let attempt = 0; attempt <= EF_RETRIES; attempt++) {
      const hits = this.graphSearch(q, plainQuery, wanted, ef, allow);
      if (hits.length >= wanted) return hits;
      ef *= 4;
    }
    return store.exactSearch(q, k, allow, filter);
  }

  async saveTo(dir: string): Promise<void> {
    await writeFilesTo(dir, await this.files());
  }

  async serialize(): Promise<Buffer> {
    return packFiles(await this.files());
  }

  private async files(): Promise<AnnFiles> {
    const files = storeToFiles(this.store, this.kind, { ...this.params });
    // writeIndex runs on libuv's thread pool: searches may go on meanwhile, writes are refused until it is done.
    this.saving++;
    try {
      const graph = await withTempDir(async (dir) => {
        const path = join(dir, GRAPH_FILE);
        await this.graph.writeIndex(path);
        return readFile(path);
      });
      files.set(GRAPH_FILE, graph);
      return files;
    } finally {
      this.saving--;
    }
  }

  private assertWritable(): void {
    if (this.saving > 0) throw new Error('HnswIndex is being saved; change it after saveTo/serialize resolves');
  }

  private graphSearch(
    q: Float32Array,
    plainQuery: number[],
    k: number,
    ef: number,
    allow: LabelFilter | null,
  ): SearchHit[] {
    if (ef !== this.currentEf) {
      this.graph.setEf(ef);
      this.currentEf = ef;
    }
    const { neighbors } =
      allow === null ? this.graph.searchKnn(plainQuery, k) : this.graph.searchKnn(plainQuery, k, allow);
    // Re-score from the stored vectors: exact float64 scores, and the same order the brute-force oracle uses.
    const scored = neighbors.map((label) => ({ label, score: this.store.score(q, label) }));
    scored.sort((a, b) => b.score - a.score || a.label - b.label);
    return scored.map(({ label, score }) => ({ id: this.store.ids[label] as string, score }));
  }
}

function paramsOf(manifest: AnnManifest): HnswParams {
  const saved = manifest.params ?? {};
  return {
    M: saved.M ?? DEFAULT_HNSW_PARAMS.M,
    efConstruction: saved.efConstruction ?? DEFAULT_HNSW_PARAMS.efConstruction,
    ef: saved.ef ?? DEFAULT_HNSW_PARAMS.ef,
    randomSeed: saved.randomSeed ?? DEFAULT_HNSW_PARAMS.randomSeed,
    exactFallbackFraction: saved.exactFallbackFraction ?? DEFAULT_HNSW_PARAMS.exactFallbackFraction,
  };
}
