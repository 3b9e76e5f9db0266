import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ItemStore } from './item-store.ts';
import type { AnnIndexKind, AnnSpace, ItemMeta } from './types.ts';

/** Bumped when the saved layout changes incompatibly; loaders refuse other formats. */
export const ANN_FORMAT_VERSION = 1;

export const MANIFEST_FILE = 'manifest.json';
export const VECTORS_FILE = 'vectors.f32';

/** What `manifest.json` holds: everything but the vectors and the graph. */
export interface AnnManifest {
  format: typeof ANN_FORMAT_VERSION;
  kind: AnnIndexKind;
  space: AnnSpace;
  dim: number;
  capacity: number;
  /** label → id; the vectors file has one row per entry, in this order. */
  ids: string[];
  /** label → metadata (null when none). */
  meta: (ItemMeta | null)[];
  /** Labels of removed items. */
  removed: number[];
  /** Implementation-specific settings (HNSW knobs). */
  params?: Record<string, number>;
}

/** A saved index as named files: `saveTo` writes them into a directory, `serialize` packs them into one Buffer. */
export type AnnFiles = Map<string, Buffer>;

export function storeToFiles(store: ItemStore, kind: AnnIndexKind, params?: Record<string, number>): AnnFiles {
  const removed: number[] = [];
  for (let label = 0; label < store.count; label++) if (store.removed[label] === 1) removed.push(label);
  const manifest: AnnManifest = {
    format: ANN_FORMAT_VERSION,
    kind,
    space: store.space,
    dim: store.dim,
    capacity: store.capacity,
    ids: store.ids,
    meta: store.meta.map((m) => m ?? null),
    removed,
    ...(params ? { params } : {}),
  };
  const rows = store.vectors.subarray(0, store.count * store.dim);
  // Copy: a Buffer over the live typed array would change under later upserts.
  const vectors = Buffer.from(rows.buffer.slice(rows.byteOffset, rows.byteOffset + rows.byteLength));
  return new Map([
    [MANIFEST_FILE, Buffer.from(JSON.stringify(manifest))],
    [VECTORS_FILE, vectors],
  ]);
}

export function parseManifest(bytes: Buffer): AnnManifest {
  const manifest = JSON.parse(bytes.toString('utf8')) as AnnManifest;
  if (manifest.format !== ANN_FORMAT_VERSION) {
    throw new Error(`unsupported ANN index format ${String(manifest.format)}, expected ${ANN_FORMAT_VERSION}`);
  }
  return manifest;
}

/** Rebuilds the shared item store from a manifest and the raw vectors file. */
export function storeFromFiles(manifest: AnnManifest, vectorBytes: Buffer): ItemStore {
  const { ids, dim } = manifest;
  if (vectorBytes.byteLength !== ids.length * dim * 4) {
    throw new Error(`vectors file has ${vectorBytes.byteLength} bytes, expected ${ids.length * dim * 4}`);
  }
  const store = new ItemStore(manifest.space, dim, Math.max(manifest.capacity, ids.length));
  // Copy through a Uint8Array view: the Buffer may sit at an offset not aligned for Float32Array.
  new Uint8Array(store.vectors.buffer).set(vectorBytes);
  for (let label = 0; label < ids.length; label++) {
    const id = ids[label] as string;
    store.ids.push(id);
    store.labels.set(id, label);
    store.meta.push(undefined);
    store.setMeta(label, manifest.meta[label] ?? undefined);
  }
  for (const label of manifest.removed) {
    store.removed[label] = 1;
    store.removedCount++;
  }
  return store;
}

/** Writes the files into `dir`, the manifest last, each through a temp name so a reader never sees half a file. */
export async function writeFilesTo(dir: string, files: AnnFiles): Promise<void> {
  await mkdir(dir, { recursive: true });
  const ordered = [...files.keys()].sort((a, b) => Number(a === MANIFEST_FILE) - Number(b === MANIFEST_FILE));
  for (const name of ordered) {
    const target = join(dir, name);
    await writeFile(`${target}.tmp`, files.get(name) as Buffer);
    await rename(`${target}.tmp`, target);
  }
}

const MAGIC = Buffer.from('ANNIDX1\n', 'latin1');

/** One Buffer: magic, uint32 header length, JSON header `[name, byteLength][]`, then the files back to back. */
export function packFiles(files: AnnFiles): Buffer {
  const header = Buffer.from(JSON.stringify([...files].map(([name, bytes]) => [name, bytes.byteLength])));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.byteLength);
  return Buffer.concat([MAGIC, length, header, ...files.values()]);
}

export function unpackFiles(packed: Buffer): AnnFiles {
  if (packed.byteLength < MAGIC.byteLength + 4 || !packed.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
    throw new Error('not a serialized ANN index');
  }
  const headerLength = packed.readUInt32LE(MAGIC.byteLength);
  let offset = MAGIC.byteLength + 4;
  const entries = JSON.parse(packed.subarray(offset, offset + headerLength).toString('utf8')) as [string, number][];
  offset += headerLength;
  const files: AnnFiles = new Map();
  for (const [name, byteLength] of entries) {
    files.set(name, packed.subarray(offset, offset + byteLength));
    offset += byteLength;
  }
  if (offset !== packed.byteLength) throw new Error('serialized ANN index is truncated or has trailing bytes');
  return files;
}

/** Runs `use` with a fresh temp directory and removes it afterwards (hnswlib reads and writes only paths). */
export async function withTempDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ann-'));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function readManifest(dir: string): Promise<AnnManifest> {
  return parseManifest(await readFile(join(dir, MANIFEST_FILE)));
}
