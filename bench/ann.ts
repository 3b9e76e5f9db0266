// `npm run bench -- ann [--items=100000] [--queries=500]`: HNSW (hnswlib-node, through src/ann) against exact
// search and against usearch on clustered synthetic vectors, single thread. Writes bench/results/ann.json.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import usearch from 'usearch';
import {
  type AnnIndex,
  BruteForceIndex,
  DEFAULT_HNSW_PARAMS,
  HnswIndex,
  type ItemMeta,
  type SearchFilter,
  type SearchHit,
} from '../src/ann/index.ts';
import { clusteredQueries, clusteredVectors } from '../test/unit/ann/clustered-vectors.ts';
import { percentile, writeResults } from './lib/results.ts';

function arg(name: string, fallback: number): number {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.slice(name.length + 3)) : fallback;
}

const ITEMS = arg('items', 100_000);
const DIM = arg('dim', 64);
const CLUSTERS = arg('clusters', 300);
const QUERIES = arg('queries', 500);
const K = 10;
const MB = 2 ** 20;

// A real gc() for the memory figures, without requiring a node flag on `npm run bench`.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function rss(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}

function recallAt(found: readonly (readonly { id: string }[])[], truth: readonly SearchHit[][]): number {
  let hit = 0;
  let total = 0;
  for (let i = 0; i < truth.length; i++) {
    const wanted = new Set((truth[i] ?? []).map((h) => h.id));
    total += wanted.size;
    for (const h of found[i] ?? []) if (wanted.has(h.id)) hit++;
  }
  return total === 0 ? 1 : hit / total;
}

/** Runs every query once (warm-up pass first) and returns answers, queries/s and latency percentiles. */
function timed<T>(queries: readonly Float32Array[], run: (q: Float32Array) => T) {
  for (let i = 0; i < Math.min(50, queries.length); i++) run(queries[i] as Float32Array);
  const latencies = new Float64Array(queries.length);
  const answers: T[] = [];
  const start = performance.now();
  for (let i = 0; i < queries.length; i++) {
    const t = performance.now();
    answers.push(run(queries[i] as Float32Array));
    latencies[i] = performance.now() - t;
  }
  const seconds = (performance.now() - start) / 1000;
  latencies.sort();
  return {
    answers,
    qps: round(queries.length / seconds),
    p50Ms: round(percentile(latencies, 50), 3),
    p99Ms: round(percentile(latencies, 99), 3),
  };
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

console.error(`ann bench: ${ITEMS} items × ${DIM} dims, ${CLUSTERS} clusters, ${QUERIES} queries, k=${K}`);
const data = clusteredVectors(ITEMS, DIM, CLUSTERS, 1);
const queries = clusteredQueries(data, QUERIES, DIM, 2);
// Stock and price uncorrelated with the vectors (half in stock, prices 0–99); categories follow the clusters.
const meta: ItemMeta[] = data.ids.map((_, i) => ({
  inStock: i % 2 === 0,
  price: (i * 7919) % 100,
  category: `c${(data.clusterOf[i] as number) % 30}`,
}));
const input = { space: 'ip' as const, dim: DIM, ids: data.ids, vectors: data.vectors, meta };

// Exact baseline, single thread, same process.
const exact = BruteForceIndex.build(input);
const exactRun = timed(queries, (q) => exact.search(q, K));
const truth = exactRun.answers;
console.error(`exact: ${exactRun.qps} q/s`);

// HNSW build with the defaults.
const rssBeforeBuild = rss();
const buildStart = performance.now();
const hnsw = HnswIndex.build(input);
const buildSeconds = round((performance.now() - buildStart) / 1000, 2);
const rssMb = round((rss() - rssBeforeBuild) / MB);
console.error(`hnsw: built in ${buildSeconds} s, +${rssMb} MB RSS`);

const hnswRun = timed(queries, (q) => hnsw.search(q, K));
const recallAt10 = round(recallAt(hnswRun.answers, truth), 4);

// Filters: 50 % (in stock), 20 % and 5 % (price bands); exact answers from the brute-force index.
const filters: { name: string; filter: SearchFilter }[] = [
  { name: 'inStock50', filter: { inStockOnly: true } },
  { name: 'price20', filter: { minPrice: 0, maxPrice: 19 } },
  { name: 'price5', filter: { minPrice: 0, maxPrice: 4 } },
  { name: 'twoCategories', filter: { categories: ['c3', 'c7'] } },
];
const filtered: Record<string, unknown> = {};
let filteredRecallAt10 = Number.NaN;
let filteredAlwaysK = false;
for (const { name, filter } of filters) {
  const exactFiltered = timed(queries, (q) => exact.search(q, K, filter));
  const run = timed(queries, (q) => hnsw.search(q, K, filter));
  const recall = round(recallAt(run.answers, exactFiltered.answers), 4);
  const alwaysK = run.answers.every((hits) => hits.length === K);
  filtered[name] = { recallAt10: recall, alwaysK, qps: run.qps, p99Ms: run.p99Ms, exactQps: exactFiltered.qps };
  if (name === 'inStock50') {
    filteredRecallAt10 = recall;
    filteredAlwaysK = alwaysK;
  }
  console.error(`filter ${name}: recall ${recall}, always k ${alwaysK}, ${run.qps} q/s`);
}

// Save, load, and check that the loaded index answers as well as the built one.
const dir = await mkdtemp(join(tmpdir(), 'ann-bench-'));
const saveStart = performance.now();
await hnsw.saveTo(dir);
const saveSeconds = round((performance.now() - saveStart) / 1000, 2);
const diskMb = round(
  (await stat(join(dir, 'graph.hnsw'))).size / MB + (await stat(join(dir, 'vectors.f32'))).size / MB,
);
const loadStart = performance.now();
const loaded: AnnIndex = await HnswIndex.loadFrom(dir);
const loadSeconds = round((performance.now() - loadStart) / 1000, 2);
const recallAfterLoad = round(recallAt(timed(queries, (q) => loaded.search(q, K)).answers, truth), 4);

// ef sweep on the loaded graph: the figures behind DEFAULT_HNSW_PARAMS.ef.
const efSweep: { ef: number; recallAt10: number; qps: number; p99Ms: number }[] = [];
for (const ef of [16, 32, 64, 128, 256]) {
  const index = await HnswIndex.loadFrom(dir, { ef });
  const run = timed(queries, (q) => index.search(q, K));
  efSweep.push({ ef, recallAt10: round(recallAt(run.answers, truth), 4), qps: run.qps, p99Ms: run.p99Ms });
}
await rm(dir, { recursive: true, force: true });
console.error(`ef sweep: ${JSON.stringify(efSweep)}`);

// usearch with the same graph knobs, one thread, inner product.
const rssBeforeUsearch = rss();
const usearchStart = performance.now();
const other = new usearch.Index({
  dimensions: DIM,
  metric: usearch.MetricKind.IP,
  quantization: usearch.ScalarKind.F32,
  connectivity: DEFAULT_HNSW_PARAMS.M,
  expansion_add: DEFAULT_HNSW_PARAMS.efConstruction,
  expansion_search: DEFAULT_HNSW_PARAMS.ef,
  multi: false,
});
other.add(
  BigUint64Array.from(data.ids, (_, i) => BigInt(i)),
  data.vectors,
  1,
);
const usearchBuildSeconds = round((performance.now() - usearchStart) / 1000, 2);
const usearchRssMb = round((rss() - rssBeforeUsearch) / MB);
const usearchRun = timed(queries, (q) => {
  const { keys } = other.search(q, K, 1);
  return Array.from(keys, (key) => ({ id: data.ids[Number(key)] as string }));
});
const usearchFigures = {
  library: 'usearch',
  version: '2.25.3',
  buildSeconds: usearchBuildSeconds,
  rssMb: usearchRssMb,
  recallAt10: round(recallAt(usearchRun.answers, truth), 4),
  qps: usearchRun.qps,
  p50Ms: usearchRun.p50Ms,
  p99Ms: usearchRun.p99Ms,
  note: 'same M/efConstruction/ef, threads=1, no filtered search from JS; the graph only, no id map or metadata',
};
console.error(`usearch: ${JSON.stringify(usearchFigures)}`);

writeResults('ann', {
  items: ITEMS,
  dim: DIM,
  clusters: CLUSTERS,
  queries: QUERIES,
  k: K,
  space: 'ip',
  params: { ...DEFAULT_HNSW_PARAMS },
  recallAt10,
  qps: hnswRun.qps,
  p50Ms: hnswRun.p50Ms,
  p99Ms: hnswRun.p99Ms,
  exactQps: exactRun.qps,
  speedupVsExact: round(hnswRun.qps / exactRun.qps),
  filteredRecallAt10,
  filteredAlwaysK,
  filtered,
  buildSeconds,
  rssMb,
  vectorMirrorMb: round((ITEMS * DIM * 4) / MB),
  saveSeconds,
  loadSeconds,
  diskMb,
  recallAfterLoad,
  efSweep,
  other: usearchFigures,
});
