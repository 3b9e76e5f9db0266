import type { SearchFilter } from '../ann/index.ts';
import type { Item } from '../generated/prisma/client.ts';
import type { CatalogService } from './catalog.ts';
import type { FeatureStore, HistoryEntry, TrendingItem } from './features.ts';
import { type ListReach, MAX_BLOCKED_CO_VISITS } from './list-reach.ts';
import type { HistoryHits, ModelService } from './models.ts';
import type { CompiledFilter } from './rules.ts';

/** Where a candidate came from; the order of `RecommendationService`'s sources is the fill order. */
export type CandidateSourceName = 'LEARNED' | 'CO_VISITED' | 'SIMILAR' | 'TRENDING' | 'CATALOGUE';

/** An item a source proposes, with its score on that source's own scale. */
export interface Candidate {
  item: Item;
  /** The source's raw score: comparable within one source only. */
  score: number;
  source: CandidateSourceName;
  /** The item of the shopper's history (or the viewed item) that led to it, for sources that have one. */
  anchorItemId: string | null;
  /** The model version that scored it (LEARNED, SIMILAR). */
  modelVersion: number | null;
}

/**
 * One candidate source of a ranking: stateful for that one ranking, so asking again gives the next best ones.
 * `accept` says which items the ranking can still use (filter, exclusions, not taken yet); a source returns
 * only items it accepted, best first.
 */
export interface CandidateSource {
  readonly name: CandidateSourceName;
  /** Up to `want` more accepted candidates, best first; fewer once the source runs dry. */
  next(want: number, accept: (itemId: string) => boolean): Candidate[] | Promise<Candidate[]>;
  /** True once `next` can give nothing more. */
  readonly exhausted: boolean;
}

/** The shopper's latest items whose co-visited items become candidates. */
export const CO_VISIT_SEEDS = 5;
/** Co-visited items read per seed item. */
export const CO_VISIT_CANDIDATES = 50;
/** The shopper's latest items whose nearest items (by the model's item vectors) become candidates. */
const SIMILAR_SEEDS = 3;
/** Shared by every list whose co-visited candidates were all recommendable (most of them). */
const NONE_BLOCKED: readonly string[] = [];

/** The category and price constraints an ANN search applies itself (its metadata mirrors the catalogue's). */
export function annNarrowing(
  filter: CompiledFilter,
): Pick<SearchFilter, 'categories' | 'minPrice' | 'maxPrice'> | undefined {
  if (filter.categories === null && filter.priceMin === null && filter.priceMax === null) return undefined;
  return {
    ...(filter.categories !== null && { categories: filter.categories }),
    ...(filter.priceMin !== null && { minPrice: filter.priceMin }),
    ...(filter.priceMax !== null && { maxPrice: filter.priceMax }),
  };
}

/** Items an item-to-item ranking orders at first (of the thousands a history can reach). */
const RANKED_FIRST = 64;
/** Shared by the reach of every list an item-to-item version ranked (it has no shopper vector). */
const NO_QUERY = new Float32Array(0);

/**
 * The learned model. An item-to-item version (one with a neighbour table) ranks the items the shopper's
 * recent history reaches through the table, each anchored on the history item that contributed most; a
 * vector model, or a shopper whose history reaches nothing, the shopper's best items by inner product with
 * their (folded-in or trained) vector, a narrow filter pushed into the ANN search. `accept` is the predicate.
 */
export function learnedSource(deps: {
  models: ModelService;
  catalog: CatalogService;
  userId: string;
  foldedIn: { versionId: number; vector: Float32Array } | undefined;
  /** The shopper's latest items with their weights, read when the current version is item-to-item. */
  history: readonly HistoryEntry[] | undefined;
  filter: CompiledFilter;
  reach: ListReach | null;
  /** A version an experiment variant pins, instead of the current one. */
  versionId?: number;
}): CandidateSource {
  const { models, catalog, userId, foldedIn, reach, history } = deps;
  const pinned = deps.versionId;
  const narrow = annNarrowing(deps.filter);
  let exhausted = false;
  // Ranked on the first call, the best few only; later calls page further down, ranking more when needed.
  let table: HistoryHits | undefined | null = null;
  let limit = 0;
  let offset = 0;
  const fromTable = (want: number, accept: (itemId: string) => boolean): Candidate[] => {
    const hits = table as HistoryHits;
    const { itemIds, versionId } = hits;
    let { ranking } = hits;
    const out: Candidate[] = [];
    while (out.length < want) {
      if (offset >= ranking.items.length) {
        // Ranked as far as the limit: rank further (the same order, so the prefix already read stays).
        if (ranking.items.length >= ranking.reached || !history) break;
        limit *= 4;
        const more = models.rankHistory(history, limit, pinned);
        // Another version took over between two calls: this list ends its learned part with the first one.
        if (!more || more.versionId !== versionId) {
          exhausted = true;
          break;
        }
        table = more;
        ranking = more.ranking;
        continue;
      }
      const at = offset++;
      const itemId = itemIds[ranking.items[at] as number] as string;
      const item = accept(itemId) ? catalog.get(itemId) : undefined;
      if (!item) continue;
      const anchorItemId = itemIds[ranking.anchors[at] as number] ?? null;
      out.push({ item, score: ranking.scores[at] as number, source: 'LEARNED', anchorItemId, modelVersion: versionId });
    }
    if (offset >= ranking.reached) exhausted = true;
    // (An early end above leaves the reach's threshold at 0: any reached item may enter, an over-approximation.)
    if (reach) {
      // Run dry, the list takes whatever the history reaches: any reached item may enter (score > 0).
      const threshold = exhausted ? 0 : (out.at(-1)?.score ?? 0);
      if (!reach.learned) {
        const query = { rows: hits.query.rows.slice(), weights: hits.query.weights.slice() };
        reach.learned = { versionId, query: NO_QUERY, history: query, threshold, exact: true };
      } else {
        reach.learned.threshold = Math.min(reach.learned.threshold, threshold);
        reach.learned.exact = false;
      }
    }
    return out;
  };
  return {
    name: 'LEARNED',
    get exhausted() {
      return exhausted;
    },
    next(want, accept) {
      if (table === null) {
        // Enough for a typical list and its rejections; deeper pages rank more.
        limit = Math.max(RANKED_FIRST, 4 * want);
        table = history?.length ? models.rankHistory(history, limit, pinned) : undefined;
      }
      if (table && table.ranking.reached > 0) return fromTable(want, accept);
      const learned = models.recommendFor(userId, want, accept, foldedIn, narrow, pinned);
      if (!learned) {
        exhausted = true;
        return [];
      }
      if (learned.hits.length < want) exhausted = true;
      const out: Candidate[] = [];
      for (const { itemId, score } of learned.hits) {
        const item = catalog.get(itemId);
        if (item) out.push({ item, score, source: 'LEARNED', anchorItemId: null, modelVersion: learned.versionId });
      }
      if (reach) {
        const threshold = out.at(-1)?.score ?? Number.NEGATIVE_INFINITY;
        if (!reach.learned) {
          reach.learned = {
            versionId: learned.versionId,
            query: learned.query.slice(),
            threshold,
            exact: learned.unfiltered && out.length === want,
          };
        } else {
          reach.learned.threshold = Math.min(reach.learned.threshold, threshold);
          reach.learned.exact = false;
        }
      }
      return out;
    },
  };
}

/**
 * Co-visitation: items other shoppers touched in the same sessions as the seed items (the shopper's latest, or
 * the viewed item), scored by how many sessions paired them relative to the strongest pair; the anchor is the
 * seed that contributed most.
 */
export function coVisitedSource(deps: {
  features: FeatureStore;
  catalog: CatalogService;
  seeds: () => Promise<readonly string[]>;
  reach: ListReach | null;
}): CandidateSource {
  const { features, catalog, seeds, reach } = deps;
  let ranked: { itemId: string; score: number; anchor: string }[] | undefined;
  let offset = 0;
  const blocked: string[] = [];
  return {
    name: 'CO_VISITED',
    get exhausted() {
      return ranked !== undefined && offset >= ranked.length;
    },
    async next(want, accept) {
      if (!ranked) {
        const seedIds = await seeds();
        const counts = new Map<string, { count: number; anchor: string; anchorCount: number }>();
        if (seedIds.length > 0) {
          for (const [seed, pairs] of await features.coVisited(seedIds, CO_VISIT_CANDIDATES)) {
            for (const { itemId, count } of pairs) {
              const entry = counts.get(itemId);
              if (!entry) counts.set(itemId, { count, anchor: seed, anchorCount: count });
              else {
                entry.count += count;
                if (count > entry.anchorCount) {
                  entry.anchor = seed;
                  entry.anchorCount = count;
                }
              }
            }
          }
        }
        let top = 1;
        for (const { count } of counts.values()) top = Math.max(top, count);
        ranked = [...counts]
          .map(([itemId, { count, anchor }]) => ({ itemId, score: count / top, anchor }))
          .sort((a, b) => b.score - a.score);
      }
      const out: Candidate[] = [];
      while (offset < ranked.length && out.length < want) {
        const entry = ranked[offset++];
        if (!entry) break;
        const { itemId, score, anchor } = entry;
        if (!catalog.isRecommendable(itemId)) blocked.push(itemId);
        const item = catalog.get(itemId);
        if (!item || !accept(itemId)) continue;
        out.push({ item, score, source: 'CO_VISITED', anchorItemId: anchor, modelVersion: null });
      }
      if (reach) {
        reach.coVisitBlocked =
          blocked.length === 0 ? NONE_BLOCKED : blocked.length > MAX_BLOCKED_CO_VISITS ? 'any' : [...blocked];
      }
      return out;
    },
  };
}

/**
 * Similar items: the nearest items by cosine of the model's item vectors to each anchor (the shopper's latest
 * items, or the viewed item), anchors in order.
 */
export function similarSource(deps: {
  models: ModelService;
  catalog: CatalogService;
  anchors: () => Promise<readonly string[]>;
  filter: CompiledFilter;
  reach: ListReach | null;
  /** A version an experiment variant pins, instead of the current one. */
  versionId?: number;
}): CandidateSource {
  const { models, catalog, anchors, reach } = deps;
  const narrow = annNarrowing(deps.filter);
  let exhausted = false;
  return {
    name: 'SIMILAR',
    get exhausted() {
      return exhausted;
    },
    async next(want, accept) {
      const out: Candidate[] = [];
      const taken = new Set<string>();
      let anyModel = false;
      for (const anchor of (await anchors()).slice(0, SIMILAR_SEEDS)) {
        if (out.length >= want) break;
        const similar = models.similarTo(
          anchor,
          want - out.length,
          (id) => !taken.has(id) && accept(id),
          narrow,
          deps.versionId,
        );
        if (!similar) continue;
        anyModel = true;
        for (const { itemId, score } of similar.hits) {
          const item = catalog.get(itemId);
          if (!item || taken.has(itemId)) continue;
          taken.add(itemId);
          out.push({ item, score, source: 'SIMILAR', anchorItemId: anchor, modelVersion: similar.versionId });
        }
      }
      // Any item with a vector may be similar to the anchors: a catalogue change can always reach such a list.
      if (anyModel && reach) reach.open = true;
      if (out.length < want) exhausted = true;
      return out;
    },
  };
}

/** Trending entries read per page under a narrow filter, which skips most of them. */
const NARROW_TRENDING_PAGE = 500;
/**
 * How far down the trending ranking a narrow filter reads (Redis keeps one global ranking, not one per
 * category); past it the catalogue source fills the list.
 */
export const NARROW_TRENDING_DEPTH = 2000;

/**
 * Shop-wide trending (time-decayed interactions), paged down the ranking as far as needed; under a narrow
 * filter at most NARROW_TRENDING_DEPTH deep.
 */
export function trendingSource(deps: {
  /** The shop's trending ranking, paged (the feature store, or the rebuild fallback in front of it). */
  trending: Pick<FeatureStore, 'trending'>;
  catalog: CatalogService;
  /** Items the ranking is likely to skip (what the shopper bought): read that many more per page. */
  skipHint: number;
  /** The filter constrains more than stock: read bigger pages, and stop at NARROW_TRENDING_DEPTH. */
  narrow: boolean;
  reach: ListReach | null;
}): CandidateSource {
  const { trending, catalog, skipHint, narrow, reach } = deps;
  let buffer: TrendingItem[] = [];
  let offset = 0;
  let done = false;
  return {
    name: 'TRENDING',
    get exhausted() {
      return done && buffer.length === 0;
    },
    async next(want, accept) {
      const out: Candidate[] = [];
      const page = Math.max(4 * want, want + skipHint, narrow ? NARROW_TRENDING_PAGE : 0);
      while (out.length < want) {
        if (buffer.length === 0) {
          if (done) break;
          buffer = await trending.trending(page, offset);
          offset += page;
          if (buffer.length < page || (narrow && offset >= NARROW_TRENDING_DEPTH)) done = true;
          if (buffer.length === 0) break;
        }
        const entry = buffer.shift();
        if (!entry) break;
        const { itemId, score, logScore } = entry;
        const item = catalog.get(itemId);
        if (!item || !accept(itemId)) continue;
        out.push({ item, score, source: 'TRENDING', anchorItemId: null, modelVersion: null });
        if (reach) reach.trendingCut = logScore;
      }
      return out;
    },
  };
}

/**
 * The catalogue itself, in catalogue order, through the category index when the filter names categories: the
 * last resort that makes a list reach k whenever k eligible items exist.
 */
export function catalogueSource(deps: {
  catalog: CatalogService;
  filter: CompiledFilter;
  reach: ListReach | null;
}): CandidateSource {
  const { catalog, filter, reach } = deps;
  let iterator: Iterator<Item> | undefined;
  let done = false;
  return {
    name: 'CATALOGUE',
    get exhausted() {
      return done;
    },
    next(want, accept) {
      if (reach) reach.open = true;
      iterator ??= catalog.scan(filter)[Symbol.iterator]();
      const out: Candidate[] = [];
      while (out.length < want) {
        const step = iterator.next();
        if (step.done) {
          done = true;
          break;
        }
        if (!accept(step.value.id)) continue;
        out.push({ item: step.value, score: 0, source: 'CATALOGUE', anchorItemId: null, modelVersion: null });
      }
      return out;
    },
  };
}
