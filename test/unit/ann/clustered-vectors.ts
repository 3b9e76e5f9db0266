// Synthetic item and query vectors shaped like a catalogue's: a few hundred clusters of very different sizes.
// Shared by the ANN test suite and bench/ann.ts, so the benchmark measures the data the tests check.

/** Small seeded PRNG (mulberry32): the same seed gives the same vectors on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(random: () => number): () => number {
  return () => {
    const u = 1 - random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
}

export interface ClusteredData {
  ids: string[];
  vectors: Float32Array;
  /** Cluster of each item, e.g. to derive a category. */
  clusterOf: Uint32Array;
  centres: Float32Array;
  clusters: number;
}

/**
 * `n` vectors in `dim` dims around `clusters` Gaussian centres whose sizes follow a power law (cluster i gets a
 * share ∝ 1/(i+1)^1.1), with per-item norms varying ±25 % as matrix-factorisation item vectors do.
 */
export function clusteredVectors(n: number, dim: number, clusters: number, seed = 1): ClusteredData {
  const random = seededRandom(seed);
  const normal = gaussian(random);
  const centres = new Float32Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = normal();
  const weights = Float64Array.from({ length: clusters }, (_, i) => 1 / (i + 1) ** 1.1);
  const cumulative = new Float64Array(clusters);
  let total = 0;
  for (let c = 0; c < clusters; c++) {
    total += weights[c] as number;
    cumulative[c] = total;
  }
  const spread = 0.35;
  const vectors = new Float32Array(n * dim);
  const clusterOf = new Uint32Array(n);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = random() * total;
    let c = 0;
    while (c < clusters - 1 && (cumulative[c] as number) < r) c++;
    clusterOf[i] = c;
    const scale = 0.75 + 0.5 * random();
    for (let j = 0; j < dim; j++) {
      vectors[i * dim + j] = (scale * ((centres[c * dim + j] as number) + spread * normal())) / Math.sqrt(dim);
    }
    ids.push(`item-${i}`);
  }
  return { ids, vectors, clusterOf, centres, clusters };
}

/** Query vectors drawn near random cluster centres (a user's taste sits near what they buy). */
export function clusteredQueries(data: ClusteredData, count: number, dim: number, seed = 2): Float32Array[] {
  const random = seededRandom(seed);
  const normal = gaussian(random);
  const queries: Float32Array[] = [];
  for (let q = 0; q < count; q++) {
    const c = Math.floor(random() * data.clusters);
    const query = new Float32Array(dim);
    for (let j = 0; j < dim; j++) query[j] = ((data.centres[c * dim + j] as number) + 0.5 * normal()) / Math.sqrt(dim);
    queries.push(query);
  }
  return queries;
}
