import { randomUUID } from 'node:crypto';
import { Repeater } from '@repeaterjs/repeater';
import { DomainError, UnavailableError } from '../errors.ts';
import type { Item } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { PubSub, UserChanged } from '../realtime/pubsub.ts';
import type { CatalogChange, CatalogService } from './catalog.ts';
import type { FeatureStore } from './features.ts';
import { diffLists, type ListChange, type ListTrigger } from './list-changes.ts';
import { canEnter, type EntryContext, type ListReach, MAX_BLOCKED_CO_VISITS } from './list-reach.ts';
import type { ModelService } from './models.ts';
import { type PacedTask, Pacer } from './pacer.ts';
import type { ShopperVectors } from './shopper-vectors.ts';
import { checkId, checkK } from './validation.ts';

/** The shopper's latest items whose co-visited items become candidates. */
const CO_VISIT_SEEDS = 5;
/** Co-visited items read per seed item. */
const CO_VISIT_CANDIDATES = 50;
/** Triggers about the shopper themselves: recomputed at once, never paced behind a fan-out. */
const isOwn = (trigger: ListTrigger) => trigger === 'EVENT' || trigger === 'PRIVACY';
/** Shared by every list whose co-visited candidates were all recommendable (most of them). */
const NONE_BLOCKED: readonly string[] = [];
/** Items becoming recommendable at once beyond which a catalogue change recomputes every watched list. */
const MAX_ENTERING_CHECKED = 100;

export interface Recommendation {
  item: Item;
  score: number;
  /** Why the item is on the list, for display and debugging. */
  reason: string;
}

/** An in-stock item on the trending ranking. */
export interface TrendingProduct {
  item: Item;
  /** Relative to the most trending item (1 = the top). */
  score: number;
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

/** A ranked list and what its ranking leaves for deciding which catalogue changes can alter it. */
interface Ranked {
  list: RecommendationList;
  reach: ListReach;
}

/** One open subscription, as the fan-out sees it. */
interface Watched extends PacedTask {
  readonly userId: string;
  /** Asks for a recomputation; folds into one already pending. */
  request(trigger: ListTrigger, cause?: UserChanged | null): void;
  /** Whether changing these items (`entering` of them became recommendable) could change what the subscriber sees. */
  affectedBy(changed: ReadonlySet<string>, entering: readonly string[], context: EntryContext): boolean;
}

/** Watched-list work since the gateway started, by what asked for it. */
export interface FanoutStats {
  /** Open watched lists (subscriptions). */
  watching: number;
  /** Rankings of watched lists, including each subscription's first. */
  recomputes: Record<ListTrigger, number>;
  /** Lists pushed: rankings that changed something the subscriber sees. */
  pushes: Record<ListTrigger, number>;
  /** Catalogue- and model-triggered recomputations running now (at most FANOUT_CONCURRENCY). */
  inFlight: number;
  /** Catalogue- and model-triggered recomputations waiting for a slot. */
  waiting: number;
  /** The most that ever ran at once. */
  maxInFlight: number;
}

const byTrigger = (): Record<ListTrigger, number> => ({
  SUBSCRIBED: 0,
  EVENT: 0,
  CATALOG: 0,
  MODEL: 0,
  PRIVACY: 0,
});

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
  readonly #watched = new Set<Watched>();
  readonly #pacer: Pacer;
  readonly #counts = { recomputes: byTrigger(), pushes: byTrigger() };
  readonly #metrics: Metrics;
  readonly #stopListening: Promise<() => Promise<void>>;

  constructor(deps: {
    features: FeatureStore;
    catalog: CatalogService;
    models: ModelService;
    vectors: ShopperVectors;
    pubsub: PubSub;
    logger: Logger;
    /** Catalogue- and model-triggered recomputations run at once (config FANOUT_CONCURRENCY). */
    fanoutConcurrency: number;
    /** And started per second (config FANOUT_RATE; 0 = no limit). */
    fanoutRate: number;
    metrics: Metrics;
  }) {
    this.#features = deps.features;
    this.#catalog = deps.catalog;
    this.#models = deps.models;
    this.#vectors = deps.vectors;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
    this.#pacer = new Pacer(deps.fanoutConcurrency, deps.fanoutRate);
    // One listener each for all watched lists: a change is matched against every list in one pass.
    this.#catalog.onChange((change) => this.#catalogChanged(change));
    this.#models.onActivated(() => {
      for (const watched of this.#watched) watched.request('MODEL');
    });
    this.#stopListening = deps.pubsub
      .onShopperForgotten(({ userId }) => {
        for (const watched of this.#watched) if (watched.userId === userId) watched.request('PRIVACY');
      })
      .catch((error: unknown) => {
        deps.logger.error(
          { err: error },
          'following erasures failed: open lists of an erased shopper stay as they are',
        );
        return async () => undefined;
      });
    this.#metrics = deps.metrics;
  }

  async recommend(userId: string, k: number, causedBy: UserChanged | null = null): Promise<RecommendationList> {
    checkId('userId', userId);
    checkK('k', k);
    return (await this.#rankOrFail(userId, k, causedBy)).list;
  }

  async #rankOrFail(userId: string, k: number, causedBy: UserChanged | null): Promise<Ranked> {
    try {
      return await this.#rank(userId, k, causedBy);
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
  }

  async #rank(userId: string, k: number, causedBy: UserChanged | null): Promise<Ranked> {
    const versionId = this.#models.currentVersionId;
    // Both reads in one round trip's time: this runs for every push.
    const [bought, vector] = await Promise.all([
      this.#features.boughtItems(userId),
      versionId === undefined ? undefined : this.#vectors.get(userId, versionId),
    ]);
    const items: Recommendation[] = [];
    const chosen = new Set<string>();
    const eligible = (id: string) => !bought.has(id) && !chosen.has(id) && this.#catalog.isRecommendable(id);
    const reach: ListReach = { learned: null, coVisitBlocked: null, trendingCut: null, open: false };

    const foldedIn = vector && versionId !== undefined ? { versionId, vector } : undefined;
    const learned = this.#models.recommendFor(userId, k, eligible, foldedIn);
    for (const { itemId, score } of learned?.hits ?? []) {
      const item = this.#catalog.get(itemId);
      if (!item) continue;
      items.push({ item, score, reason: 'learned' });
      chosen.add(itemId);
    }
    if (learned) {
      reach.learned = {
        versionId: learned.versionId,
        query: learned.query.slice(),
        threshold: items.at(-1)?.score ?? Number.NEGATIVE_INFINITY,
        exact: learned.unfiltered && items.length === k,
      };
    }

    // Without a model (or a vector for the shopper) to fill the list: what other shoppers touched in the
    // same sessions as this shopper's latest items.
    if (items.length < k) {
      const blocked: string[] = [];
      for (const { itemId, score } of await this.#coVisitedWithRecent(userId)) {
        if (items.length === k) break;
        const item = this.#catalog.get(itemId);
        if (!this.#catalog.isRecommendable(itemId)) blocked.push(itemId);
        if (!item || !eligible(itemId)) continue;
        items.push({ item, score, reason: 'co-visited' });
        chosen.add(itemId);
      }
      reach.coVisitBlocked =
        blocked.length === 0 ? NONE_BLOCKED : blocked.length > MAX_BLOCKED_CO_VISITS ? 'any' : blocked;
    }
    if (items.length < k) {
      for await (const { item, score, logScore } of this.#trendingInStock(Math.max(4 * k, k + bought.size))) {
        if (!eligible(item.id)) continue;
        items.push({ item, score, reason: 'trending' });
        chosen.add(item.id);
        reach.trendingCut = logScore;
        if (items.length === k) break;
      }
    }
    // Too little signal (a new shop, or a shopper who bought nearly everything): fill from the catalogue.
    if (items.length < k) {
      reach.open = true;
      for (const item of this.#catalog.recommendable()) {
        if (items.length === k) break;
        if (!eligible(item.id)) continue;
        items.push({ item, score: 0, reason: 'catalogue' });
        chosen.add(item.id);
      }
    }
    const list: RecommendationList = {
      recommendationId: randomUUID(),
      userId,
      items,
      strategy: learned?.hits.length ? 'als' : items.some((r) => r.reason === 'co-visited') ? 'co-visited' : 'trending',
      modelVersion: learned?.hits.length ? learned.versionId : null,
      generatedAt: new Date(),
      causedBy,
      change: null,
    };
    return { list, reach };
  }

  /**
   * The shop's most trending in-stock items, best first; a score is relative to the most trending item of
   * all (1 = the top, which may be out of stock). Empty while no events have been processed.
   */
  async trending(k: number): Promise<TrendingProduct[]> {
    checkK('k', k);
    const top: TrendingProduct[] = [];
    try {
      for await (const entry of this.#trendingInStock(2 * k)) {
        top.push(entry);
        if (top.length === k) break;
      }
    } catch (error) {
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
    return top;
  }

  /** Pages down the trending ranking, `page` ids per read, yielding the items that are in stock. */
  async *#trendingInStock(page: number): AsyncGenerator<TrendingProduct & { logScore: number }> {
    for (let offset = 0; ; offset += page) {
      const trending = await this.#features.trending(page, offset);
      for (const { itemId, score, logScore } of trending) {
        const item = this.#catalog.get(itemId);
        if (item && this.#catalog.isRecommendable(itemId)) yield { item, score, logScore };
      }
      if (trending.length < page) return;
    }
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
    checkId('itemId', itemId);
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
   * of theirs, a catalogue change that touches the list (price, stock) or could put an item on it (see
   * `canEnter`), or a new model version. Event-triggered recomputations run at once; catalogue- and
   * model-triggered ones wait their turn in the gateway's pacer. Changes that arrive while a list is pending
   * or being computed fold into one recomputation, and a recomputation that changes nothing visible pushes
   * nothing. Ends, and unsubscribes, when the consumer returns.
   */
  watch(userId: string, k: number): AsyncIterable<RecommendationList> {
    checkId('userId', userId);
    checkK('k', k);
    const counts = this.#counts;
    const pacer = this.#pacer;
    return new Repeater<RecommendationList>(async (push, stop) => {
      // A pending recomputation: what asked for it, with the shopper's latest event when one did.
      let pending: { trigger: ListTrigger; cause: UserChanged | null } | null = null;
      // Held until the first list is out, so a change arriving meanwhile cannot overtake it.
      let computing = true;
      let shown: RecommendationList | undefined;
      let reach: ListReach | undefined;
      const kick = () => {
        if (computing || !pending) return;
        // The freshness path: a shopper's own event (or their erasure) is never queued behind a fan-out.
        if (isOwn(pending.trigger)) void refresh(false);
        else pacer.schedule(watched);
      };
      const refresh = async (paced: boolean) => {
        if (computing) return;
        computing = true;
        try {
          // Outside the pacer only event work runs; catalogue or model work left over is queued below.
          while (pending && (paced || isOwn(pending.trigger))) {
            const { trigger, cause } = pending;
            pending = null;
            counts.recomputes[trigger]++;
            const ranked = await this.#rankOrFail(userId, k, cause);
            reach = ranked.reach;
            const change = diffLists(shown, ranked.list, trigger);
            if (!change) continue;
            shown = ranked.list;
            this.#pushed(ranked.list, trigger);
            await push({ ...ranked.list, change });
          }
        } catch (error) {
          if (error instanceof UnavailableError) this.#metrics.dependencyErrors.inc({ dependency: error.dependency });
          this.#logger.error({ err: error }, 'recomputing a watched list failed');
        } finally {
          computing = false;
        }
        kick();
      };
      const watched: Watched = {
        userId,
        run: () => refresh(true),
        request(trigger, cause = null) {
          // The shopper's own event names the push even when a catalogue or model change joins it.
          pending = cause || !pending?.cause ? { trigger, cause } : pending;
          kick();
        },
        affectedBy(changed, entering, context) {
          // A pending recomputation reads the changed catalogue anyway.
          if (pending) return false;
          // Mid-ranking, the list may have read the catalogue before the change.
          if (computing || !shown || !reach) return true;
          if (shown.items.some(({ item }) => changed.has(item.id))) return true;
          const last = reach;
          return entering.some((id) => canEnter(last, id, context));
        },
      };
      const unsubscribe = await this.#pubsub.onUserChanged(userId, (change) => watched.request('EVENT', change));
      this.#watched.add(watched);
      this.#metrics.subscriptionsOpen.inc();
      try {
        counts.recomputes.SUBSCRIBED++;
        const first = await this.#rankOrFail(userId, k, null);
        shown = first.list;
        reach = first.reach;
        this.#pushed(first.list, 'SUBSCRIBED');
        await push({ ...first.list, change: diffLists(undefined, first.list, 'SUBSCRIBED') });
        computing = false;
        kick();
        await stop;
      } catch (error) {
        stop(error);
      } finally {
        this.#metrics.subscriptionsOpen.dec();
        this.#watched.delete(watched);
        pacer.cancel(watched);
        await unsubscribe();
      }
    });
  }

  /** Recomputes the watched lists a catalogue change can alter: those showing a changed item or open to an entering one. */
  #catalogChanged({ itemIds, becameRecommendable }: CatalogChange): void {
    if (this.#watched.size === 0) return;
    const changed = new Set(itemIds);
    const fanOut = (trending: ReadonlyMap<string, number> | null) => {
      // Past this many, checking every list against every entering item costs more than it saves.
      const everything = becameRecommendable.length > MAX_ENTERING_CHECKED;
      const context: EntryContext = {
        currentVersionId: this.#models.currentVersionId,
        modelScore: (versionId, query, itemId) => this.#models.itemScore(versionId, query, itemId),
        trending,
      };
      for (const watched of this.#watched) {
        if (everything || watched.affectedBy(changed, becameRecommendable, context)) watched.request('CATALOG');
      }
    };
    if (becameRecommendable.length === 0 || becameRecommendable.length > MAX_ENTERING_CHECKED) {
      fanOut(new Map());
      return;
    }
    // The entering items' trending scores: one read for all lists.
    this.#features.trendingLogScores(becameRecommendable).then(fanOut, (error: unknown) => {
      this.#logger.warn({ err: error }, 'reading trending scores for a catalogue change failed');
      fanOut(null);
    });
  }

  /** Stops following erasures (at shutdown). */
  async stop(): Promise<void> {
    await (await this.#stopListening)();
  }

  /** Counts and pacing of watched-list recomputations since start (for metrics and benchmarks). */
  get fanout(): FanoutStats {
    return {
      watching: this.#watched.size,
      recomputes: { ...this.#counts.recomputes },
      pushes: { ...this.#counts.pushes },
      inFlight: this.#pacer.inFlight,
      waiting: this.#pacer.waiting,
      maxInFlight: this.#pacer.maxInFlight,
    };
  }

  /** Counts a push as it goes out and, for one an event caused, how long after the event it went. */
  #pushed(list: RecommendationList, trigger: ListTrigger): void {
    this.#metrics.pushes.inc({ trigger });
    this.#counts.pushes[trigger]++;
    if (list.causedBy) {
      const latencyMs = Date.now() - Date.parse(list.causedBy.receivedAt);
      this.#metrics.pushLatency.observe(Math.max(0, latencyMs) / 1000);
    }
  }
}
