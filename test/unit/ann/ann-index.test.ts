import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AnnIndex,
  type AnnSpace,
  BruteForceIndex,
  type BuildInput,
  deserializeAnnIndex,
  HnswIndex,
  type ItemMeta,
  loadAnnIndex,
  type SearchHit,
} from '../../../src/ann/index.ts';
import { clusteredQueries, clusteredVectors, seededRandom } from './clustered-vectors.ts';

interface Implementation {
  name: string;
  build(input: BuildInput): AnnIndex;
  empty(space: AnnSpace, dim: number, capacity: number): AnnIndex;
  loadFrom(dir: string): Promise<AnnIndex>;
  deserialize(bytes: Buffer): Promise<AnnIndex>;
}

const implementations: Implementation[] = [
  {
    name: 'HnswIndex',
    build: (input) => HnswIndex.build(input),
    empty: (space, dim, capacity) => HnswIndex.empty(space, dim, capacity),
    loadFrom: (dir) => HnswIndex.loadFrom(dir),
    deserialize: (bytes) => HnswIndex.deserialize(bytes),
  },
  {
    name: 'BruteForceIndex',
    build: (input) => BruteForceIndex.build(input),
    empty: (space, dim, capacity) => BruteForceIndex.empty(space, dim, capacity),
    loadFrom: (dir) => BruteForceIndex.loadFrom(dir),
    deserialize: (bytes) => BruteForceIndex.deserialize(bytes),
  },
];

const DIM = 16;

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let j = 0; j < a.length; j++) sum += (a[j] as number) * (b[j] as number);
  return sum;
}

function randomVectors(n: number, dim: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n * dim }, () => random() * 2 - 1);
}

function ids(hits: SearchHit[]): string[] {
  return hits.map((hit) => hit.id);
}

/** Share of the oracle's top ids that the candidate also returned. */
function recall(candidate: SearchHit[][], oracle: SearchHit[][]): number {
  let found = 0;
  let total = 0;
  for (let i = 0; i < oracle.length; i++) {
    const wanted = new Set(ids(oracle[i] ?? []));
    total += wanted.size;
    for (const hit of candidate[i] ?? []) if (wanted.has(hit.id)) found++;
  }
  return total === 0 ? 1 : found / total;
}

/** Catalogue of n items with metadata: category by cluster, price 0–99, every third item out of stock. */
function catalogue(n: number, dim: number, seed = 1) {
  const data = clusteredVectors(n, dim, 40, seed);
  const meta: ItemMeta[] = data.ids.map((_, i) => ({
    inStock: i % 3 !== 0,
    category: `cat-${(data.clusterOf[i] as number) % 5}`,
    price: i % 100,
  }));
  return { ...data, meta, queries: clusteredQueries(data, 50, dim, seed + 1) };
}

describe.each(implementations)('$name', (impl) => {
  const shared = catalogue(3000, DIM);
  let index: AnnIndex;
  let oracle: BruteForceIndex;
  let workDir: string;

  beforeAll(async () => {
    const input: BuildInput = { space: 'ip', dim: DIM, ids: shared.ids, vectors: shared.vectors, meta: shared.meta };
    index = impl.build(input);
    oracle = BruteForceIndex.build(input);
    workDir = await mkdtemp(join(tmpdir(), 'ann-test-'));
  });

  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  describe('build and search', () => {
    it('returns the k items with the highest inner product, best first, with their inner products as scores', () => {
      const vectors = randomVectors(200, DIM, 7);
      const itemIds = Array.from({ length: 200 }, (_, i) => `p${i}`);
      const small = impl.build({ space: 'ip', dim: DIM, ids: itemIds, vectors });
      const query = randomVectors(1, DIM, 8);

      const hits = small.search(query, 5);

      const expected = itemIds
        .map((id, i) => ({ id, score: dot(query, vectors.subarray(i * DIM, (i + 1) * DIM)) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 5);
      expect(ids(hits)).toEqual(ids(expected));
      for (const [i, hit] of hits.entries()) expect(hit.score).toBeCloseTo(expected[i]?.score as number, 5);
    });

    it('scores by cosine similarity in cosine space, whatever the vector lengths', () => {
      const small = impl.empty('cosine', 3, 4);
      small.upsert('x', [10, 0, 0]);
      small.upsert('diagonal', [1, 1, 0]);
      small.upsert('y', [0, 0.1, 0]);

      const hits = small.search([2, 0, 0], 3);

      expect(ids(hits)).toEqual(['x', 'diagonal', 'y']);
      expect(hits[0]?.score).toBeCloseTo(1, 6);
      expect(hits[1]?.score).toBeCloseTo(Math.SQRT1_2, 6);
      expect(hits[2]?.score).toBeCloseTo(0, 6);
    });

    it('returns every live item when k exceeds the catalogue', () => {
      const small = impl.empty('ip', 2, 8);
      small.upsert('a', [1, 0]);
      small.upsert('b', [0, 1]);

      expect(ids(small.search([1, 0.5], 10))).toEqual(['a', 'b']);
      expect(small.search([1, 0], 0)).toEqual([]);
    });

    it('rejects a build whose vectors do not match ids × dim', () => {
      expect(() => impl.build({ space: 'ip', dim: 4, ids: ['a', 'b'], vectors: new Float32Array(7) })).toThrow(
        RangeError,
      );
    });

    it('finds at least 95 % of the exact top 10 on clustered vectors', () => {
      const truth = shared.queries.map((q) => oracle.search(q, 10));

      const found = shared.queries.map((q) => index.search(q, 10));

      expect(recall(found, truth)).toBeGreaterThanOrEqual(0.95);
      expect(found.every((hits) => hits.length === 10)).toBe(true);
    });
  });

  describe('lifecycle', () => {
    it('finds an upserted item and follows an update of its vector', () => {
      const small = impl.build({ space: 'ip', dim: DIM, ids: ['a', 'b'], vectors: randomVectors(2, DIM, 3) });
      const target = Array.from({ length: DIM }, (_, j) => (j === 0 ? 5 : 0));
      const elsewhere = Array.from({ length: DIM }, (_, j) => (j === 1 ? 5 : 0));

      small.upsert('new', target, { inStock: true });
      const first = small.search(target, 1);
      small.upsert('new', elsewhere);
      const afterUpdate = small.search(elsewhere, 1);

      expect(ids(first)).toEqual(['new']);
      expect(ids(afterUpdate)).toEqual(['new']);
      expect(afterUpdate[0]?.score).toBeCloseTo(25, 5);
      expect(small.size).toBe(3);
      expect(small.getMeta('new')).toEqual({ inStock: true });
    });

    it('hides a removed item until it is restored', () => {
      const small = impl.build({ space: 'ip', dim: DIM, ids: ['a', 'b', 'c'], vectors: randomVectors(3, DIM, 4) });
      const query = randomVectors(1, DIM, 5);
      const best = small.search(query, 1)[0]?.id as string;

      const removed = small.remove(best);
      const whileRemoved = small.search(query, 3);
      const restored = small.restore(best);

      expect(removed).toBe(true);
      expect(ids(whileRemoved)).not.toContain(best);
      expect(whileRemoved).toHaveLength(2);
      expect(small.has(best)).toBe(true);
      expect(restored).toBe(true);
      expect(small.search(query, 1)[0]?.id).toBe(best);
      expect(small.remove('unknown')).toBe(false);
      expect(small.restore('a') || small.restore('b') || small.restore('c')).toBe(false);
    });

    it('brings a removed item back when it is upserted again', () => {
      const small = impl.empty('ip', 2, 4);
      small.upsert('a', [1, 0]);
      small.upsert('b', [0, 1]);
      small.remove('a');

      small.upsert('a', [1, 0]);

      expect(small.has('a')).toBe(true);
      expect(ids(small.search([1, 0], 1))).toEqual(['a']);
      expect(small.size).toBe(2);
    });

    it('grows capacity without a rebuild, explicitly and when an upsert finds it full', () => {
      const small = impl.empty('ip', DIM, 4);
      const vectors = randomVectors(40, DIM, 6);
      for (let i = 0; i < 4; i++) small.upsert(`i${i}`, vectors.subarray(i * DIM, (i + 1) * DIM));

      small.reserve(10);
      const reserved = small.capacity;
      for (let i = 4; i < 40; i++) small.upsert(`i${i}`, vectors.subarray(i * DIM, (i + 1) * DIM));

      expect(reserved).toBe(10);
      expect(small.capacity).toBeGreaterThanOrEqual(40);
      expect(small.size).toBe(40);
      for (const i of [0, 3, 4, 39]) {
        expect(small.search(vectors.subarray(i * DIM, (i + 1) * DIM), 40).map((hit) => hit.id)).toContain(`i${i}`);
      }
    });

    it('updates metadata without touching the vector', () => {
      const small = impl.empty('ip', 2, 4);
      small.upsert('a', [1, 0], { inStock: true, price: 10 });
      small.upsert('b', [0.5, 0], { inStock: true, price: 10 });

      const changed = small.setMeta('a', { inStock: false, price: 10 });

      expect(changed).toBe(true);
      expect(ids(small.search([1, 0], 2, { inStockOnly: true }))).toEqual(['b']);
      expect(ids(small.search([1, 0], 2))).toEqual(['a', 'b']);
      expect(small.setMeta('unknown', { inStock: true })).toBe(false);
    });
  });

  describe('filtered search', () => {
    const query = shared.queries[0] as Float32Array;

    it('never returns excluded ids and still returns k', () => {
      const unfiltered = index.search(query, 10);
      const exclude = new Set(ids(unfiltered).slice(0, 5));

      const hits = index.search(query, 10, { exclude });

      expect(hits).toHaveLength(10);
      expect(ids(hits).filter((id) => exclude.has(id))).toEqual([]);
      expect(recall([hits], [oracle.search(query, 10, { exclude })])).toBeGreaterThanOrEqual(0.9);
    });

    it('keeps only in-stock items when asked', () => {
      const hits = index.search(query, 10, { inStockOnly: true });

      expect(hits).toHaveLength(10);
      expect(hits.every((hit) => index.getMeta(hit.id)?.inStock)).toBe(true);
      expect(recall([hits], [oracle.search(query, 10, { inStockOnly: true })])).toBeGreaterThanOrEqual(0.9);
    });

    it('keeps only the requested categories', () => {
      const categories = ['cat-1', 'cat-3'];

      const hits = index.search(query, 10, { categories });

      expect(hits).toHaveLength(10);
      expect(hits.every((hit) => categories.includes(index.getMeta(hit.id)?.category as string))).toBe(true);
    });

    it('finds the true top k of the requested categories when vector lengths differ widely', () => {
      // Lengths spread over two orders of magnitude, as a popularity-shaped model's item vectors are: the
      // category scan stops early on length, and must still return exactly the naive top k.
      const random = seededRandom(7);
      const n = 2000;
      const vectors = new Float32Array(n * DIM);
      for (let i = 0; i < n * DIM; i++) vectors[i] = random() - 0.5;
      for (let i = 0; i < n; i++) {
        const scale = 10 ** (2 * random() - 1);
        for (let j = 0; j < DIM; j++) vectors[i * DIM + j] = (vectors[i * DIM + j] as number) * scale;
      }
      const itemIds = Array.from({ length: n }, (_, i) => `v-${i}`);
      const meta = itemIds.map((_, i) => ({ inStock: true, category: `c-${i % 20}` }));
      const built = impl.build({ space: 'ip', dim: DIM, ids: itemIds, vectors, meta });
      // 10 % of the catalogue: below the fraction at which HNSW walks its graph, so both scan exactly.
      const categories = ['c-2', 'c-9'];
      for (let trial = 0; trial < 20; trial++) {
        const q = Float32Array.from({ length: DIM }, () => random() - 0.5);
        const naive = itemIds
          .map((id, i) => {
            let score = 0;
            for (let j = 0; j < DIM; j++) score += (q[j] as number) * (vectors[i * DIM + j] as number);
            return { id, score, category: meta[i]?.category as string };
          })
          .filter((hit) => categories.includes(hit.category))
          .sort((a, b) => b.score - a.score)
          .slice(0, 15)
          .map((hit) => hit.id);

        expect(ids(built.search(q, 15, { categories }))).toEqual(naive);
      }
    });

    it('keeps only items inside the price range', () => {
      const hits = index.search(query, 10, { minPrice: 20, maxPrice: 29.5 });

      expect(hits).toHaveLength(10);
      for (const hit of hits) {
        expect(index.getMeta(hit.id)?.price).toBeGreaterThanOrEqual(20);
        expect(index.getMeta(hit.id)?.price).toBeLessThanOrEqual(29.5);
      }
    });

    it('applies a predicate on id together with the other conditions', () => {
      const predicate = (id: string) => id.endsWith('7');

      const hits = index.search(query, 10, { predicate, inStockOnly: true, exclude: ['item-7'] });

      expect(hits).toHaveLength(10);
      expect(hits.every((hit) => hit.id.endsWith('7') && hit.id !== 'item-7' && index.getMeta(hit.id)?.inStock)).toBe(
        true,
      );
    });

    it('returns exactly k, the exact best ones, when the filter excludes 95 % of the catalogue', () => {
      const allowed = new Set(shared.ids.filter((_, i) => i % 20 === 0));
      const exclude = shared.ids.filter((id) => !allowed.has(id));

      for (const filter of [{ predicate: (id: string) => allowed.has(id) }, { exclude }]) {
        const found = shared.queries.map((q) => index.search(q, 10, filter));
        const truth = shared.queries.map((q) => oracle.search(q, 10, filter));

        expect(found.every((hits) => hits.length === 10 && hits.every((hit) => allowed.has(hit.id)))).toBe(true);
        expect(recall(found, truth)).toBeGreaterThanOrEqual(0.99);
      }
    });

    it('returns exactly k with recall ≥ 0.95 when the filter excludes half the catalogue', () => {
      const filter = { predicate: (id: string) => Number(id.slice('item-'.length)) % 2 === 0 };

      const found = shared.queries.map((q) => index.search(q, 10, filter));

      expect(found.every((hits) => hits.length === 10)).toBe(true);
      expect(
        recall(
          found,
          shared.queries.map((q) => oracle.search(q, 10, filter)),
        ),
      ).toBeGreaterThanOrEqual(0.95);
    });

    it('follows a category change made through setMeta, also for a rare category searched exactly', () => {
      const small = impl.build({
        space: 'ip',
        dim: DIM,
        ids: shared.ids.slice(0, 500),
        vectors: shared.vectors.subarray(0, 500 * DIM),
        meta: shared.meta.slice(0, 500),
      });

      small.setMeta('item-1', { inStock: true, category: 'rare' });
      small.setMeta('item-2', { inStock: true, category: 'rare' });
      const rare = small.search(query, 10, { categories: ['rare'] });
      small.setMeta('item-1', { inStock: true, category: 'cat-0' });
      const afterMove = small.search(query, 10, { categories: new Set(['rare']) });

      expect(ids(rare).sort()).toEqual(['item-1', 'item-2']);
      expect(ids(afterMove)).toEqual(['item-2']);
    });

    it('returns fewer than k only when fewer items are eligible', () => {
      const eligible = ['item-1', 'item-2', 'item-3'];

      const hits = index.search(query, 10, { predicate: (id) => eligible.includes(id) });

      expect(ids(hits).sort()).toEqual(eligible);
    });
  });

  describe('persistence', () => {
    it('answers the same after saveTo and loadFrom, removals and metadata included', async () => {
      const input: BuildInput = { space: 'ip', dim: DIM, ids: shared.ids, vectors: shared.vectors, meta: shared.meta };
      const original = impl.build(input);
      original.remove('item-10');
      original.setMeta('item-11', { inStock: false, category: 'moved' });
      const dir = join(workDir, `${impl.name}-dir`);

      await original.saveTo(dir);
      const loaded = await impl.loadFrom(dir);
      const viaDispatch = await loadAnnIndex(dir);

      const before = shared.queries.map((q) => original.search(q, 10));
      const after = shared.queries.map((q) => loaded.search(q, 10));
      const truth = shared.queries.map((q) => oracle.search(q, 10, { exclude: ['item-10'] }));
      expect(after).toEqual(before);
      expect(recall(after, truth)).toBe(recall(before, truth));
      expect(viaDispatch.kind).toBe(original.kind);
      expect(loaded.has('item-10')).toBe(false);
      expect(loaded.getMeta('item-11')).toEqual({ inStock: false, category: 'moved' });
      expect(loaded.size).toBe(original.size);
      expect(loaded.restore('item-10')).toBe(true);
    });

    it('answers the same after serialize and deserialize, and keeps accepting upserts', async () => {
      const original = impl.build({ space: 'cosine', dim: DIM, ids: shared.ids, vectors: shared.vectors });

      const bytes = await original.serialize();
      const restored = await impl.deserialize(bytes);
      const viaDispatch = await deserializeAnnIndex(bytes);
      restored.upsert('late', shared.queries[1] as Float32Array);

      expect(shared.queries.map((q) => viaDispatch.search(q, 10))).toEqual(
        shared.queries.map((q) => original.search(q, 10)),
      );
      expect(restored.space).toBe('cosine');
      expect(restored.search(shared.queries[1] as Float32Array, 1)[0]?.id).toBe('late');
    });

    it('refuses bytes that are not a serialized index', async () => {
      await expect(impl.deserialize(Buffer.from('not an index'))).rejects.toThrow(/not a serialized ANN index/);
    });
  });
});

describe('HnswIndex while saving', () => {
  it('keeps answering searches but refuses writes until the save resolves', async () => {
    const data = catalogue(300, DIM);
    const index = HnswIndex.build({ space: 'ip', dim: DIM, ids: data.ids, vectors: data.vectors });
    const before = index.search(data.queries[0] as Float32Array, 5);

    const saving = index.serialize();
    const during = index.search(data.queries[0] as Float32Array, 5);
    const write = () => index.upsert('late', data.queries[0] as Float32Array);

    expect(during).toEqual(before);
    expect(write).toThrow(/being saved/);
    await saving;
    write();
    expect(index.has('late')).toBe(true);
  });
});
