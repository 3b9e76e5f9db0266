// Public surface of the vector-retrieval leaf: import from here, not from the files behind it.
import { BruteForceIndex } from './brute-force-index.ts';
import { HnswIndex } from './hnsw-index.ts';
import { MANIFEST_FILE, parseManifest, readManifest, unpackFiles } from './persist.ts';
import type { AnnIndex } from './types.ts';

export { BruteForceIndex, type BuildInput } from './brute-force-index.ts';
export { DEFAULT_HNSW_PARAMS, HnswIndex, type HnswParams } from './hnsw-index.ts';
export { type IndexVersion, type VersionedHits, VersionedIndex, type VersionedIndexOptions } from './index-registry.ts';
export { ANN_FORMAT_VERSION } from './persist.ts';
export type { AnnIndex, AnnIndexKind, AnnSpace, ItemMeta, SearchFilter, SearchHit } from './types.ts';

/** Loads an index saved with `saveTo`, whichever implementation wrote it. */
export async function loadAnnIndex(dir: string): Promise<AnnIndex> {
  const { kind } = await readManifest(dir);
  return kind === 'hnsw' ? HnswIndex.loadFrom(dir) : BruteForceIndex.loadFrom(dir);
}

/** Restores an index from `serialize()` output, whichever implementation wrote it. */
export async function deserializeAnnIndex(bytes: Buffer): Promise<AnnIndex> {
  const manifestBytes = unpackFiles(bytes).get(MANIFEST_FILE);
  if (!manifestBytes) throw new Error(`serialized ANN index has no ${MANIFEST_FILE}`);
  const { kind } = parseManifest(manifestBytes);
  return kind === 'hnsw' ? HnswIndex.deserialize(bytes) : BruteForceIndex.deserialize(bytes);
}
