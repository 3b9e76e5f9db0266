import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ItemStore } from './item-store.ts';
import {
  type AnnFiles,
  type AnnManifest,
  MANIFEST_FILE,
  packFiles,
  parseManifest,
  readManifest,
  storeFromFiles,
  storeToFiles,
  unpackFiles,
  VECTORS_FILE,
  writeFilesTo,
} from './persist.ts';
import { StoreBackedIndex } from './store-backed-index.ts';
import type { AnnIndex, AnnSpace, ItemMeta, SearchFilter, SearchHit } from './types.ts';

/** Input of `build`: a model version's item vectors as one flat Float32Array of `ids.length × dim`. */
export interface BuildInput {
  space: AnnSpace;
  dim: number;
  ids: readonly string[];
  vectors: Float32Array;
  /** Metadata per id, same order as `ids` (optional; items without it count as in stock). */
  meta?: readonly (ItemMeta | undefined)[];
  /** Room to reserve beyond `ids.length` (default: the ids themselves). */
  capacity?: number;
}

/**
 * Exact search by scanning every vector: the oracle the HNSW index is tested against, and the right index for
 * catalogues of a few thousand items, where a scan costs less than a graph walk plus its build.
 */
export class BruteForceIndex extends StoreBackedIndex implements AnnIndex {
  readonly kind = 'brute-force' as const;

  private constructor(store: ItemStore) {
    super(store);
  }

  static empty(space: AnnSpace, dim: number, capacity = 1024): BruteForceIndex {
    return new BruteForceIndex(new ItemStore(space, dim, capacity));
  }

  static build(input: BuildInput): BruteForceIndex {
    const { ids, vectors, dim } = input;
    checkBuildInput(input);
    const index = BruteForceIndex.empty(input.space, dim, Math.max(input.capacity ?? 0, ids.length, 1));
    for (let i = 0; i < ids.length; i++) {
      index.upsert(ids[i] as string, vectors.subarray(i * dim, (i + 1) * dim), input.meta?.[i]);
    }
    return index;
  }

  static async loadFrom(dir: string): Promise<BruteForceIndex> {
    const manifest = await readManifest(dir);
    return BruteForceIndex.fromManifest(manifest, await readFile(join(dir, VECTORS_FILE)));
  }

  static async deserialize(bytes: Buffer): Promise<BruteForceIndex> {
    const files = unpackFiles(bytes);
    const manifest = parseManifest(requireFile(files, MANIFEST_FILE));
    return BruteForceIndex.fromManifest(manifest, requireFile(files, VECTORS_FILE));
  }

  private static fromManifest(manifest: AnnManifest, vectors: Buffer): BruteForceIndex {
    if (manifest.kind !== 'brute-force') throw new Error(`expected a brute-force index, found ${manifest.kind}`);
    return new BruteForceIndex(storeFromFiles(manifest, vectors));
  }

  upsert(id: string, vector: ArrayLike<number>, meta?: ItemMeta): void {
    if (!this.store.labels.has(id) && this.store.count >= this.store.capacity) {
      this.store.reserve(Math.max(16, this.store.capacity * 2));
    }
    this.store.put(id, vector, meta);
  }

  remove(id: string): boolean {
    return this.store.markRemoved(id) !== undefined;
  }

  restore(id: string): boolean {
    return this.store.unmarkRemoved(id) !== undefined;
  }

  reserve(capacity: number): void {
    this.store.reserve(capacity);
  }

  search(query: ArrayLike<number>, k: number, filter?: SearchFilter): SearchHit[] {
    if (k <= 0 || this.store.live === 0) return [];
    return this.store.exactSearch(this.store.prepareQuery(query), k, this.store.compileFilter(filter), filter);
  }

  async saveTo(dir: string): Promise<void> {
    await writeFilesTo(dir, this.files());
  }

  async serialize(): Promise<Buffer> {
    return packFiles(this.files());
  }

  private files(): AnnFiles {
    return storeToFiles(this.store, this.kind);
  }
}

export function checkBuildInput({ ids, vectors, dim }: BuildInput): void {
  if (vectors.length !== ids.length * dim) {
    throw new RangeError(`vectors has ${vectors.length} floats, expected ${ids.length} ids × ${dim} dims`);
  }
  if (new Set(ids).size !== ids.length) throw new RangeError('ids must be unique');
}

export function requireFile(files: AnnFiles, name: string): Buffer {
  const bytes = files.get(name);
  if (!bytes) throw new Error(`serialized ANN index has no ${name}`);
  return bytes;
}
