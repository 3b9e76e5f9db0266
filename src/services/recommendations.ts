import { randomUUID } from 'node:crypto';
import { Repeater } from '@repeaterjs/repeater';
import { DomainError, UnavailableError } from '../errors.ts';
import type { Item } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { PubSub, UserChanged } from '../realtime/pubsub.ts';
import type { CatalogService } from './catalog.ts';
import type { FeatureStore } from './features.ts';
import { diffLists, type ListChange, type ListTrigger } from './list-changes.ts';
import type { ModelService } from './models.ts';
import type { ShopperVectors } from './shopper-vectors.ts';
import { checkK } from './validation.ts';

/** The shopper's latest items whose co-visited items become candidates. */
const CO_VISIT_SEEDS = 5;
/** Co-visited items read per seed item. */
const CO_VISIT_CANDIDATES = 50;

export interface Recommendation {
  item: Item;
  score: number;
  /** Why the item is on the list, for display and debugging. */
  reason: string;
}

export interface RecommendationList {
  /** Identifies this list; storefronts send it back on events for attribution. */
  recommendationId: string;
  userId: string;
  items: Recommendation[];
  /** Which ranking produced the list: `als` (the learned model) or `trending`. */
  strategy: string;
  /** The model version behind an `als` list. */
  modelVersion: number | null;
  generatedAt: Date;
  /** The event whose processing triggered this list, on pushed lists. */
  causedBy: UserChanged | null;
  /** On pushed lists: why it was pushed and which items entered and left since the previous push. */
  change: ListChange | null;
}

/**
 * Ranks products for a shopper: by the current learned model when it knows the shopper, otherwise (and to
 * fill up) by time-decayed popularity; always in-stock items the shopper has not bought.
 */
export class RecommendationService {
  readonly #features: FeatureStore;
  readonly #catalog: CatalogService;
  readonly #models: ModelService;
  readonly #vectors: ShopperVectors;
  readonly #pubsub: PubSub;
  readonly #logger: Logger;
  readonly #metrics: Metrics;

  constructor(deps: {
    features: FeatureStore;
    catalog: CatalogService;
    models: ModelService;
    vectors: ShopperVectors;
    pubsub: PubSub;
    logger: Logger;
    metrics: Metrics;
  }) {
    this.#features = deps.features;
    this.#catalog = deps.catalog;
    this.#models = deps.models;
    this.#vectors = deps.vectors;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
  }

  async recommend(userId: string, k: number, causedBy: UserChanged | null = null): Promise<RecommendationList> {
    checkK('k', k);
    try {
      return await this.#rank(userId, k, causedBy);
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
  }

  async #rank(userId: string, k: number, causedBy: UserChanged | null): Promise<RecommendationList> {
    const versionId = this.#models.currentVersionId;
    // Both reads in one round trip's time: this runs for every push.
    const [bought, vector] = await Promise.all([
      this.#features.boughtItems(userId),
      versionId === undefined ? undefined : this.#vectors.get(userId, versionId),
    ]);
    const items: Recommendation[] = [];
    const chosen = new Set<string>();
    const eligible = (id: string) => !bought.has(id) && !chosen.has(id) && this.#catalog.isRecommendable(id);

    const foldedIn = vector && versionId !== undefined ? { versionId, vector } : undefined;
    const learned = this.#models.recommendFor(userId, k, eligible, foldedIn);
    for (const { itemId, score } of learned?.hits ?? []) {
      const item = this.#catalog.get(itemId);
      if (!item) continue;
      items.push({ item, score, reason: 'learned' });
      chosen.add(itemId);
    }

    // Without a model (or a vector for the shopper) to fill the list: what other shoppers touched in the
    // same sessions as this shopper's latest items.
    if (items.length < k) {
      for (const { itemId, score } of await this.#coVisitedWithRecent(userId)) {
        if (items.length === k) break;
        const item = this.#catalog.get(itemId);
        if (!item || !eligible(itemId)) continue;
        items.push({ item, score, reason: 'co-visited' });
        chosen.add(itemId);
      }
    }
    // Page down the trending ranking until k items survive the filters.
    const page = Math.max(4 * k, k + bought.size);
    for (let offset = 0; items.length < k; offset += page) {
      const trending = await this.#features.trending(page, offset);
      for (const { itemId, score } of trending) {
        if (items.length === k) break;
        const item = this.#catalog.get(itemId);
        if (!item || !eligible(itemId)) continue;
        items.push({ item, score, reason: 'trending' });
        chosen.add(itemId);
      }
      if (trending.length < page) break;
    }
    // Too little signal (a new shop, or a shopper who bought nearly everything): fill from the catalogue.
    if (items.length < k) {
      for (const item of this.#catalog.recommendable()) {
        if (items.length === k) break;
        if (!eligible(item.id)) continue;
        items.push({ item, score: 0, reason: 'catalogue' });
        chosen.add(item.id);
      }
    }
    return {
      recommendationId: randomUUID(),
      userId,
      items,
      strategy: learned?.hits.length ? 'als' : items.some((r) => r.reason === 'co-visited') ? 'co-visited' : 'trending',
      modelVersion: learned?.hits.length ? learned.versionId : null,
      generatedAt: new Date(),
      causedBy,
      change: null,
    };
  }

  /**
   * Items co-visited with the shopper's latest few, scored by how many sessions paired them (relative to the
   * strongest pair), strongest first.
   */
  async #coVisitedWithRecent(userId: string): Promise<{ itemId: string; score: number }[]> {
    const recent = await this.#features.recentItems(userId, CO_VISIT_SEEDS);
    if (recent.length === 0) return [];
    const counts = new Map<string, number>();
    for (const pairs of (await this.#features.coVisited(recent, CO_VISIT_CANDIDATES)).values()) {
      for (const { itemId, count } of pairs) counts.set(itemId, (counts.get(itemId) ?? 0) + count);
    }
    const top = Math.max(1, ...counts.values());
    return [...counts].map(([itemId, count]) => ({ itemId, score: count / top })).sort((a, b) => b.score - a.score);
  }

  /**
   * "Shoppers who liked this also liked": nearest in-stock items by the current model's item vectors, then
   * (without a model, or to fill up) the items shoppers touched in the same sessions as this one.
   */
  async similar(itemId: string, k: number): Promise<Recommendation[]> {
    checkK('k', k);
    const eligible = (id: string) => id !== itemId && this.#catalog.isRecommendable(id);
    const similar: Recommendation[] = [];
    for (const { itemId: id, score } of this.#models.similarTo(itemId, k, eligible)?.hits ?? []) {
      const item = this.#catalog.get(id);
      if (item) similar.push({ item, score, reason: 'similar' });
    }
    if (similar.length < k) {
      try {
        const pairs = (await this.#features.coVisited([itemId], CO_VISIT_CANDIDATES)).get(itemId) ?? [];
        const top = pairs[0]?.count ?? 1;
        for (const { itemId: id, count } of pairs) {
          if (similar.length === k) break;
          const item = this.#catalog.get(id);
          if (!item || !eligible(id) || similar.some((r) => r.item.id === id)) continue;
          similar.push({ item, score: count / top, reason: 'co-visited' });
        }
      } catch (error) {
        throw new UnavailableError('redis', 'Redis (online features)', error);
      }
    }
    return similar;
  }

  /**
   * The shopper's list now, then a fresh list whenever what they would see changes: after a processed event
   * of theirs, a catalogue change that touches the list (price, stock) or could put an item on it, or a new
   * model version. Changes that arrive while a list is being computed fold into one recomputation, and a
   * recomputation that changes nothing visible pushes nothing. Ends, and unsubscribes, when the consumer
   * returns.
   */
  watch(userId: string, k: number): AsyncIterable<RecommendationList> {
    checkK('k', k);
    return new Repeater<RecommendationList>(async (push, stop) => {
      // A pending recomputation: what asked for it, with the shopper's latest event when one did.
      let pending: { trigger: ListTrigger; cause: UserChanged | null } | null = null;
      // Held until the first list is out, so a change arriving meanwhile cannot overtake it.
      let computing = true;
      let shown: RecommendationList | undefined;
      const refresh = async () => {
        if (computing) return;
        computing = true;
        try {
          while (pending) {
            const { trigger, cause } = pending;
            pending = null;
            const list = await this.recommend(userId, k, cause);
            const change = diffLists(shown, list, trigger);
            if (!change) continue;
            shown = list;
            this.#pushed(list, trigger);
            await push({ ...list, change });
          }
        } catch (error) {
          if (error instanceof UnavailableError) this.#metrics.dependencyErrors.inc({ dependency: error.dependency });
          this.#logger.error({ err: error, userId }, 'recomputing a watched list failed');
        } finally {
          computing = false;
        }
      };
      const request = (trigger: ListTrigger, cause: UserChanged | null = null) => {
        // The shopper's own event names the push even when a catalogue or model change joins it.
        pending = cause || !pending?.cause ? { trigger, cause } : pending;
        void refresh();
      };
      const unsubscribe = await this.#pubsub.onUserChanged(userId, (change) => request('EVENT', change));
      const stopCatalog = this.#catalog.onChange((itemIds) => {
        const touches = (id: string) =>
          shown?.items.some(({ item }) => item.id === id) || this.#catalog.isRecommendable(id);
        if (itemIds.some(touches)) request('CATALOG');
      });
      const stopModels = this.#models.onActivated(() => request('MODEL'));
      this.#metrics.subscriptionsOpen.inc();
      try {
        const first = await this.recommend(userId, k);
        shown = first;
        this.#pushed(first, 'SUBSCRIBED');
        await push({ ...first, change: diffLists(undefined, first, 'SUBSCRIBED') });
        computing = false;
        void refresh();
        await stop;
      } catch (error) {
        stop(error);
      } finally {
        this.#metrics.subscriptionsOpen.dec();
        stopCatalog();
        stopModels();
        await unsubscribe();
      }
    });
  }

  /** Counts a push as it goes out and, for one an event caused, how long after the event it went. */
  #pushed(list: RecommendationList, trigger: ListTrigger): void {
    this.#metrics.pushes.inc({ trigger });
    if (list.causedBy) {
      const latencyMs = Date.now() - Date.parse(list.causedBy.receivedAt);
      this.#metrics.pushLatency.observe(Math.max(0, latencyMs) / 1000);
    }
  }
}
