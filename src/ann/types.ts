/**
 * Contracts of the vector-retrieval leaf. Nothing here knows about GraphQL, the database or Redis: items are
 * catalogue ids (strings) with a vector and a little metadata, and queries are vectors.
 */

/**
 * Similarity the index ranks by.
 * - `ip`: inner product, for matrix-factorisation scores (user vector · item vector); vectors are stored as given.
 * - `cosine`: cosine similarity, for content similarity; vectors are normalised on the way in.
 */
export type AnnSpace = 'ip' | 'cosine';

/**
 * Small per-item facts a filter can test without a database round trip. Updatable without touching the
 * vector ({@link AnnIndex.setMeta}). An item without metadata counts as in stock, uncategorised and unpriced.
 */
export interface ItemMeta {
  /** False while the item is out of stock; `inStockOnly` filters exclude it. */
  inStock: boolean;
  /** The item's category id; `categories` filters keep only items whose category is in the set. */
  category?: string;
  /** Price in the shop's currency; `minPrice`/`maxPrice` filters drop unpriced items. */
  price?: number;
}

/**
 * Which items a search may return. Every given condition must hold (logical AND). Removed items are never
 * returned, filter or not.
 */
export interface SearchFilter {
  /** Ids never to return (what the shopper already bought, the item being viewed). */
  exclude?: ReadonlySet<string> | readonly string[];
  /** Keep only items whose metadata says `inStock: true` (items without metadata count as in stock). */
  inStockOnly?: boolean;
  /** Keep only items whose `category` is one of these. */
  categories?: ReadonlySet<string> | readonly string[];
  /** Keep only items with `price >= minPrice`. */
  minPrice?: number;
  /** Keep only items with `price <= maxPrice`. */
  maxPrice?: number;
  /**
   * Any other rule of the caller's. Called synchronously, possibly for many items per search: keep it a
   * lookup, never I/O.
   */
  predicate?: (id: string, meta: Readonly<ItemMeta> | undefined) => boolean;
}

/** One result: the item and its similarity (inner product in `ip` space, cosine similarity in `cosine`). */
export interface SearchHit {
  id: string;
  score: number;
}

/**
 * A nearest-neighbour index over catalogue items, keyed by string id.
 *
 * Implementations: `HnswIndex` (approximate, hnswlib) for real catalogues and `BruteForceIndex` (exact) as the
 * test oracle and for tiny catalogues. Every method is synchronous and runs on the caller's thread, so calls
 * never interleave; build big indexes off the serving event loop and swap them in with `VersionedIndex`.
 *
 * Lifecycle: build from a model version's vectors, then `upsert` (add or replace one item), `remove` (deleted or
 * withdrawn; kept, invisible to search) and `restore`, `setMeta` (stock, category, price) and `reserve` (grow
 * capacity without a rebuild; `upsert` also grows it when full).
 */
export interface AnnIndex {
  /** Which implementation (`hnsw` or `brute-force`); persisted so a loader can dispatch on it. */
  readonly kind: AnnIndexKind;
  readonly space: AnnSpace;
  readonly dim: number;
  /** Items that search can return (added and not removed). */
  readonly size: number;
  /** Items the index holds without growing, removed ones included. */
  readonly capacity: number;

  /** True when the id is present and not removed. */
  has(id: string): boolean;
  /**
   * Adds the item, or replaces its vector (and its metadata when given) if the id is known. Replacing a removed
   * item restores it. Grows capacity when full.
   */
  upsert(id: string, vector: ArrayLike<number>, meta?: ItemMeta): void;
  /** Replaces the item's metadata without touching its vector. Returns false for an unknown id. */
  setMeta(id: string, meta: ItemMeta): boolean;
  /** Metadata of a known id (removed ones included), or undefined. */
  getMeta(id: string): Readonly<ItemMeta> | undefined;
  /** Hides the item from search; it keeps its slot so `restore` is cheap. Returns false if unknown or removed. */
  remove(id: string): boolean;
  /** Undoes `remove`. Returns false if unknown or not removed. */
  restore(id: string): boolean;
  /** Grows capacity to at least `capacity` items without a rebuild. Never shrinks. */
  reserve(capacity: number): void;
  /**
   * The `k` best items for `query` that pass `filter`, best first. Returns exactly `k` hits whenever at least
   * `k` eligible items exist, however much the filter excludes; fewer only when fewer are eligible.
   */
  search(query: ArrayLike<number>, k: number, filter?: SearchFilter): SearchHit[];
  /**
   * Writes the index, its id map and metadata into `dir` (created if missing; its files replaced). Searches may
   * run while it is in flight; `HnswIndex` refuses upsert/remove/restore/reserve until it resolves.
   */
  saveTo(dir: string): Promise<void>;
  /** The same content as one Buffer, for a bytea column or an object store. */
  serialize(): Promise<Buffer>;
}

export const ANN_INDEX_KINDS = ['hnsw', 'brute-force'] as const;
export type AnnIndexKind = (typeof ANN_INDEX_KINDS)[number];
