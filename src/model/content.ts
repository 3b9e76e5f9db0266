// Content for cold items: an item nobody has touched yet gets a vector in the served model's space from what
// the catalogue says of it (name, description, category, attributes). Its words are hashed into a TF-IDF
// vector; the trained items most similar to it by cosine of those vectors lend it the weighted average of
// their item factors (as co-visited neighbours do in neighbour-vector.ts), so it is retrieved for the shoppers
// those items suit and has similar items before its first event. Pure and local: no model to download.
import { vectorFromNeighbours, type WeightedRow } from './neighbour-vector.ts';

/** What the catalogue says of an item. */
export interface ItemContent {
  readonly name: string;
  readonly description?: string | null;
  readonly category?: string | null;
  /** Free attributes; string, number and boolean values count (`key=value`), nested ones do not. */
  readonly attributes?: unknown;
}

/** Hash buckets of the token space: large enough that a shop's vocabulary rarely collides (4 MB of scratch). */
export const CONTENT_BUCKETS = 1 << 18;

/** Knobs of the mapping; the defaults suit catalogues of a few thousand to tens of thousands of items. */
export interface ContentParams {
  /** Trained items whose factors a cold item's vector averages. */
  readonly neighbours?: number;
  /** Below this cosine a trained item lends nothing (shares only a common word or two). */
  readonly minSimilarity?: number;
  /** Neighbour weight = cosine^power: a higher power trusts the closest items more. */
  readonly power?: number;
}

const DEFAULTS: Required<ContentParams> = { neighbours: 20, minSimilarity: 0.05, power: 2 };

/** Words that say nothing about what an item is. */
const STOP_WORDS = new Set(
  'a an and are as at by for from in into is it of on or set the this to with without your our you'.split(' '),
);

/**
 * The tokens of an item: lower-cased words of its name (twice: a name says more than a description) and
 * description (letters and digits, two characters or more, stop words dropped), its category as one token,
 * and each scalar attribute as `key=value`.
 */
export function contentTokens(content: ItemContent): string[] {
  const tokens: string[] = [];
  const words = (text: string | null | undefined, repeat: number) => {
    for (const word of (text ?? '').toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
      if (word.length < 2 || STOP_WORDS.has(word)) continue;
      for (let r = 0; r < repeat; r++) tokens.push(word);
    }
  };
  words(content.name, 2);
  words(content.description, 1);
  if (content.category) tokens.push(`category:${content.category.toLowerCase()}`);
  const attributes = content.attributes;
  if (typeof attributes === 'object' && attributes !== null && !Array.isArray(attributes)) {
    for (const [key, value] of Object.entries(attributes)) {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
        tokens.push(`${key.toLowerCase()}=${String(value).toLowerCase()}`);
    }
  }
  return tokens;
}

/** FNV-1a of a token, into CONTENT_BUCKETS. */
function bucketOf(token: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < token.length; i++) {
    hash ^= token.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) & (CONTENT_BUCKETS - 1);
}

/** Term counts of an item's tokens by bucket. */
function termCounts(content: ItemContent): Map<number, number> {
  const counts = new Map<number, number>();
  for (const token of contentTokens(content)) {
    const b = bucketOf(token);
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  return counts;
}

/**
 * What maps content into a model's item space: the trained items' TF-IDF vectors, indexed by bucket, and
 * their factors. Built from the trained items' content in the version's item order (a few MB at 20k items).
 */
export interface ContentMapping {
  readonly items: number;
  readonly factors: number;
  /** Trained items × factors, row-major (the version's item factors; not copied). */
  readonly itemFactors: Float32Array;
  /** Inverse document frequency per bucket; 0 for a bucket no trained item has. */
  readonly idf: Float32Array;
  /** Bucket → the trained items having it, with their normalised TF-IDF weight (CSR over buckets). */
  readonly postingsIndptr: Int32Array;
  readonly postingsItems: Int32Array;
  readonly postingsWeights: Float32Array;
  /** Length of each trained item's factor vector. */
  readonly itemNorms: Float32Array;
  readonly params: Required<ContentParams>;
}

/**
 * Fits the mapping from content to the model's item space: `contents[i]` is the content of the item whose
 * factors are row i of `itemFactors` (the version's item order). O(tokens) time and memory; call it where a
 * version's item factors are loaded (training, or the worker when it starts serving a version).
 */
export function fitContentMapping(
  contents: readonly ItemContent[],
  itemFactors: Float32Array,
  factors: number,
  params: ContentParams = {},
): ContentMapping {
  const items = contents.length;
  const counts = contents.map(termCounts);
  const df = new Int32Array(CONTENT_BUCKETS);
  let nnz = 0;
  for (const row of counts) {
    for (const b of row.keys()) df[b] = (df[b] as number) + 1;
    nnz += row.size;
  }
  const idf = new Float32Array(CONTENT_BUCKETS);
  for (let b = 0; b < CONTENT_BUCKETS; b++) {
    const d = df[b] as number;
    if (d > 0) idf[b] = Math.log((1 + items) / (1 + d)) + 1;
  }
  // Postings in CSR over buckets: counting pass, then fill.
  const postingsIndptr = new Int32Array(CONTENT_BUCKETS + 1);
  for (let b = 0; b < CONTENT_BUCKETS; b++) postingsIndptr[b + 1] = (postingsIndptr[b] as number) + (df[b] as number);
  const fill = postingsIndptr.slice(0, CONTENT_BUCKETS);
  const postingsItems = new Int32Array(nnz);
  const postingsWeights = new Float32Array(nnz);
  counts.forEach((row, item) => {
    const weights = tfidf(row, idf);
    for (const [b, w] of weights) {
      const at = fill[b] as number;
      fill[b] = at + 1;
      postingsItems[at] = item;
      postingsWeights[at] = w;
    }
  });
  const itemNorms = new Float32Array(items);
  for (let i = 0; i < items; i++) {
    let sum = 0;
    for (let k = i * factors; k < (i + 1) * factors; k++) sum += (itemFactors[k] as number) ** 2;
    itemNorms[i] = Math.sqrt(sum);
  }
  return {
    items,
    factors,
    itemFactors,
    idf,
    itemNorms,
    postingsIndptr,
    postingsItems,
    postingsWeights,
    params: { ...DEFAULTS, ...params },
  };
}

/** L2-normalised TF-IDF (sublinear tf) of term counts; buckets with no idf are dropped. */
function tfidf(counts: ReadonlyMap<number, number>, idf: Float32Array): Map<number, number> {
  const out = new Map<number, number>();
  let norm = 0;
  for (const [b, count] of counts) {
    const w = (1 + Math.log(count)) * (idf[b] as number);
    if (!(w > 0)) continue;
    out.set(b, w);
    norm += w * w;
  }
  norm = Math.sqrt(norm);
  for (const [b, w] of out) out.set(b, w / norm);
  return out;
}

/**
 * The trained items closest to `content` by TF-IDF cosine (at least `minSimilarity`), the closest first, with
 * weight cosine^power; `exclude` (a row) is left out, e.g. the item itself when measuring on trained items.
 */
export function contentNeighbours(mapping: ContentMapping, content: ItemContent, exclude = -1): WeightedRow[] {
  const query = tfidf(termCounts(content), mapping.idf);
  const scores = new Map<number, number>();
  for (const [b, q] of query) {
    for (let p = mapping.postingsIndptr[b] as number; p < (mapping.postingsIndptr[b + 1] as number); p++) {
      const item = mapping.postingsItems[p] as number;
      scores.set(item, (scores.get(item) ?? 0) + q * (mapping.postingsWeights[p] as number));
    }
  }
  const { neighbours, minSimilarity, power } = mapping.params;
  return [...scores]
    .filter(([item, score]) => item !== exclude && score >= minSimilarity)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, neighbours)
    .map(([row, score]) => ({ row, weight: score ** power }));
}

/**
 * A cold item's vector in the model's item space from its content, or undefined when no trained item is close:
 * the weighted average of its content neighbours' factors, stretched to their weighted mean length. An average
 * of vectors pointing different ways is shorter than any of them, and inner-product lists rank by length too:
 * unstretched, a cold item almost never reached a list (on Online Retail II with 10 % of products hidden, a
 * hidden purchase's product was in the buyer's top 10 for 0.95 % of purchases unstretched, 4.8 % stretched;
 * `npm run bench -- cold`). Cosine rankings (similar items) are unchanged by it.
 */
export function contentVector(mapping: ContentMapping, content: ItemContent, exclude = -1): Float32Array | undefined {
  const neighbours = contentNeighbours(mapping, content, exclude);
  const vector = vectorFromNeighbours(mapping.itemFactors, mapping.factors, neighbours);
  if (!vector) return undefined;
  let total = 0;
  let length = 0;
  for (const { row, weight } of neighbours) {
    total += weight;
    length += weight * (mapping.itemNorms[row] as number);
  }
  let own = 0;
  for (let k = 0; k < vector.length; k++) own += (vector[k] as number) ** 2;
  own = Math.sqrt(own);
  if (own > 0) for (let k = 0; k < vector.length; k++) vector[k] = ((vector[k] as number) * length) / total / own;
  return vector;
}
