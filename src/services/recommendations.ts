import { randomUUID } from 'node:crypto';
import { Repeater } from '@repeaterjs/repeater';
import { DomainError, UnavailableError } from '../errors.ts';
import type { Item } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { PubSub, UserChanged } from '../realtime/pubsub.ts';
import {
  type Candidate,
  type CandidateSource,
  type CandidateSourceName,
  CO_VISIT_SEEDS,
  catalogueSource,
  coVisitedSource,
  learnedSource,
  similarSource,
  trendingSource,
} from './candidate-sources.ts';
import type { CatalogChange, CatalogService } from './catalog.ts';
import type { Assignment, ExperimentService } from './experiments.ts';
import { type FeatureStore, type HistoryEntry, SERVED_HISTORY_ITEMS } from './features.ts';
import { diffLists, type ListChange, type ListTrigger } from './list-changes.ts';
import { canEnter, type EntryContext, type ListReach } from './list-reach.ts';
import { selectList } from './list-selection.ts';
import type { ModelService } from './models.ts';
import { type PacedTask, Pacer, type PacerOptions } from './pacer.ts';
import type { PlacementService } from './placements.ts';
import type { RebuildFallback } from './rebuild-fallback.ts';
import {
  boostOf,
  checkPlacementId,
  checkRules,
  type EffectivePin,
  type EffectiveRules,
  type FilterClause,
  failedClause,
  mergeRules,
  NO_RULES,
  type RuleOrigin,
  type RulesInput,
  unknownPlacement,
} from './rules.ts';
import type { ShopperVectors } from './shopper-vectors.ts';
import { checkId, checkK } from './validation.ts';

/** Triggers about the shopper themselves: recomputed at once, never paced behind a fan-out. */
const isOwn = (trigger: ListTrigger) => trigger === 'EVENT' || trigger === 'PRIVACY';
/**
 * Changes that reach every open list (a model version, a finished rebuild, an experiment): their fan-out
 * adapts to the gateway's load. Catalogue and placement changes reach only the lists they can alter and keep
 * the fixed rate, so a price or stock change is not held back behind the floor of a busy gateway.
 */
const isBulk = (trigger: ListTrigger) => trigger === 'MODEL' || trigger === 'FEATURES' || trigger === 'EXPERIMENT';
/** Items becoming recommendable at once beyond which a catalogue change recomputes every watched list. */
const MAX_ENTERING_CHECKED = 100;
/** With rules that reorder (boosts, diversity, pins, a cap), the pool holds this many times k candidates… */
const POOL_FACTOR = 3;
/** …but at most this many, so MMR and boosts stay a few thousand operations per list. */
const MAX_POOL = 300;
/** Calls one source gets per ranking before the merge moves on (a cap can keep refusing what it gives). */
const MAX_CALLS_PER_SOURCE = 8;

/** Candidates a dry run asks of each source (at least; k when larger), before the filter. */
const PREVIEW_PER_SOURCE = 20;

/** Where an item on a list came from: a candidate source, or a pin. */
export type ItemSource = CandidateSourceName | 'PINNED';

/** A boost or pin that moved an item. */
export interface AppliedRule {
  kind: 'BOOST' | 'PIN';
  origin: RuleOrigin;
  /** Its index in its origin's `boosts` or `pins`. */
  index: number;
  /** A boost's factor. */
  factor: number | null;
  /** A pin's position. */
  position: number | null;
}

/** Why an item is on a list. */
export interface Explanation {
  source: ItemSource;
  /** The item of the shopper's history (or the viewed item) that led to it ("because you viewed X"). */
  anchorItem: Item | null;
  /** The boosts and pins that moved it. */
  rules: AppliedRule[];
  /** The model version that scored it (LEARNED, SIMILAR). */
  modelVersion: number | null;
}

export interface Recommendation {
  item: Item;
  score: number;
  /** Why the item is on the list, for display and debugging (kept beside `explanation` for older clients). */
  reason: string;
  explanation: Explanation;
}

/** An in-stock item on the trending ranking. */
export interface TrendingProduct {
  item: Item;
  /** Relative to the most trending item (1 = the top). */
  score: number;
}

/** The experiment variant a list was served under. */
export interface ListExperiment {
  id: string;
  variant: string;
  /** The experiment's phase when the list was served; analyses never mix phases. */
  phase: number;
}

export interface RecommendationList {
  /**
   * Identifies this list; storefronts send it back on events for attribution. Under an experiment it is a
   * signed token naming the experiment, phase and variant (see RecommendationIds).
   */
  recommendationId: string;
  /** The experiment variant that served the list; null outside any experiment. */
  experiment: ListExperiment | null;
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

/** The rule that kept a candidate off a previewed list. */
export type RemovalRule =
  | 'FILTER'
  | 'EXCLUDE_PURCHASED'
  | 'EXCLUDE_SEEN'
  | 'MAX_PER_CATEGORY'
  | 'BELOW_CUT'
  | 'NOT_IN_CATALOGUE';

/** A candidate a dry run saw that is not on the list. */
export interface PreviewCandidate {
  item: Item;
  source: ItemSource;
  /** The source's raw score (0 for a pin). */
  score: number;
  /** The boosts whose filter it passes. */
  boosts: AppliedRule[];
  removedBy: RemovalRule;
  /** For FILTER: the filter's clause it failed. */
  clause: FilterClause | null;
}

export interface Preview {
  list: RecommendationList;
  /** Candidates the sources offered (up to max(k, 20) each, before the filter) that did not make the list. */
  removed: PreviewCandidate[];
}

/** A ranked list and what its ranking leaves for deciding which catalogue changes can alter it. */
interface Ranked {
  list: RecommendationList;
  reach: ListReach;
}

/** One open subscription, as the fan-out sees it. */
interface Watched extends PacedTask {
  /** The placement its rules come from, if any. */
  readonly placementId: string | null;
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
  /**
   * Catalogue-, model- and placement-triggered recomputations running now: at most FANOUT_CONCURRENCY in each
   * of the two pacers (catalogue and placement changes; model, rebuild and experiment changes).
   */
  inFlight: number;
  /** Catalogue-, model- and placement-triggered recomputations waiting for a slot. */
  waiting: number;
  /** The most that ever ran at once in one pacer. */
  maxInFlight: number;
  /** Starts per second the model, rebuild and experiment pacer allows now (0: no limit). */
  rate: number;
}

/** What a request asks of the ranking besides the shopper and k. */
export interface RuleRequest {
  placement?: string | null;
  rules?: RulesInput | null;
}

/** A request's rules, validated: what a ranking (and every recomputation of a watched list) merges. */
interface CheckedRequest {
  placementId: string | null;
  rules: ReturnType<typeof checkRules> | undefined;
}

/** What one ranking serves: the merged rules and, under an experiment, the shopper's variant. */
interface Serving {
  rules: EffectiveRules;
  assignment: Assignment | null;
}

/** Why the merge loop may not use an item, before the filter. */
type Exclusion = 'EXCLUDE_PURCHASED' | 'EXCLUDE_SEEN' | 'ANCHOR';

const byTrigger = (): Record<ListTrigger, number> => ({
  SUBSCRIBED: 0,
  EVENT: 0,
  CATALOG: 0,
  MODEL: 0,
  PLACEMENT: 0,
  PRIVACY: 0,
  FEATURES: 0,
  EXPERIMENT: 0,
});

const REASONS: Record<ItemSource, string> = {
  LEARNED: 'learned',
  CO_VISITED: 'co-visited',
  SIMILAR: 'similar',
  TRENDING: 'trending',
  CATALOGUE: 'catalogue',
  PINNED: 'pinned',
};

/**
 * Ranks products for a shopper. Candidate sources, in fill order: the learned model (when it knows the
 * shopper), items co-visited with the shopper's latest, items similar to them, trending, and the catalogue;
 * one merge loop asks them in turn for candidates that pass the request's filter and exclusions (in-stock items
 * the shopper has not bought by default) until the list can be filled, then applies boosts, the category cap,
 * diversity and pins (`selectList`).
 */
export class RecommendationService {
  readonly #features: FeatureStore;
  readonly #fallback: RebuildFallback;
  readonly #catalog: CatalogService;
  readonly #models: ModelService;
  readonly #vectors: ShopperVectors;
  readonly #placements: PlacementService;
  readonly #pubsub: PubSub;
  readonly #logger: Logger;
  readonly #watched = new Set<Watched>();
  /** Paces catalogue- and placement-triggered recomputations at a fixed rate. */
  readonly #targeted: Pacer;
  /** Paces model-, rebuild- and experiment-triggered ones, slowing while the gateway is busy. */
  readonly #bulk: Pacer;
  readonly #counts = { recomputes: byTrigger(), pushes: byTrigger() };
  readonly #metrics: Metrics;
  readonly #stopListening: Promise<() => Promise<void>>;
  readonly #experiments: ExperimentService | undefined;

  constructor(deps: {
    features: FeatureStore;
    /** Where trending and bought items come from while the features are rebuilt. */
    fallback: RebuildFallback;
    catalog: CatalogService;
    models: ModelService;
    vectors: ShopperVectors;
    placements: PlacementService;
    pubsub: PubSub;
    logger: Logger;
    /**
     * How recomputations not caused by the shopper are paced: at once (config FANOUT_CONCURRENCY) and started
     * per second (FANOUT_RATE, 0 = no limit); those of model, rebuild and experiment changes also slow towards
     * `load.minRate` (FANOUT_MIN_RATE) while the event loop is busier than `load.target` (FANOUT_BUSY_TARGET).
     */
    fanout: PacerOptions;
    metrics: Metrics;
    /** Assigns shoppers to experiment variants and logs what they were served; none: no experiments. */
    experiments?: ExperimentService;
  }) {
    this.#experiments = deps.experiments;
    this.#features = deps.features;
    this.#fallback = deps.fallback;
    this.#catalog = deps.catalog;
    this.#models = deps.models;
    this.#vectors = deps.vectors;
    this.#placements = deps.placements;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
    this.#targeted = new Pacer({ concurrency: deps.fanout.concurrency, maxRate: deps.fanout.maxRate });
    this.#bulk = new Pacer(deps.fanout);
    deps.metrics.watchFanout(() => ({ waiting: this.#targeted.waiting + this.#bulk.waiting, rate: this.#bulk.rate }));
    // One listener each for all watched lists: a change is matched against every list in one pass.
    this.#catalog.onChange((change) => this.#catalogChanged(change));
    this.#models.onActivated(() => {
      for (const watched of this.#watched) watched.request('MODEL');
    });
    // Lists computed during a rebuild fell back (last good trending, no co-visitation): paced like a model change.
    this.#fallback.onComplete(() => {
      for (const watched of this.#watched) watched.request('FEATURES');
    });
    this.#placements.onChange((placementId) => {
      for (const watched of this.#watched) if (watched.placementId === placementId) watched.request('PLACEMENT');
    });
    // An experiment on every list (null) reaches every subscription; one on a placement, those naming it.
    deps.experiments?.onChange((placement) => {
      for (const watched of this.#watched) {
        if (placement === null || watched.placementId === placement) watched.request('EXPERIMENT');
      }
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

  async recommend(
    userId: string,
    k: number,
    request: RuleRequest = {},
    causedBy: UserChanged | null = null,
  ): Promise<RecommendationList> {
    checkId('userId', userId);
    checkK('k', k);
    const checked = this.#checkRequest(request, k);
    const serving = this.#servingOf(userId, checked, k);
    const { list } = await this.#rankOrFail(userId, k, serving, causedBy);
    this.#served(list, serving.assignment);
    return list;
  }

  /**
   * A dry run: the list `recommend` would answer, and the candidates each source offered (up to max(k, 20)
   * each, before the filter) that are not on it, with the rule that removed them.
   */
  async preview(userId: string, k: number, request: RuleRequest = {}): Promise<Preview> {
    checkId('userId', userId);
    checkK('k', k);
    const serving = this.#servingOf(userId, this.#checkRequest(request, k), k);
    const { rules } = serving;
    try {
      // The list the shopper would get, their variant included; a dry run logs no impression.
      const { list } = await this.#rank(userId, k, serving, null);
      const onList = new Set(list.items.map((r) => r.item.id));
      const context = await this.#shopperContext(userId, rules, serving.assignment);
      const perCategory = new Map<string, number>();
      for (const { item } of list.items) {
        if (item.category !== null) perCategory.set(item.category, (perCategory.get(item.category) ?? 0) + 1);
      }
      const removed: PreviewCandidate[] = [];
      const seen = new Set(onList);
      const consider = (item: Item, source: ItemSource, score: number) => {
        if (seen.has(item.id)) return;
        seen.add(item.id);
        const filterable = this.#catalog.filterable(item.id);
        const exclusion = context.excluded(item.id);
        const clause = filterable ? failedClause(rules.filter, filterable) : null;
        const capped =
          rules.maxPerCategory !== null &&
          item.category !== null &&
          (perCategory.get(item.category) ?? 0) >= rules.maxPerCategory;
        const removedBy: RemovalRule = !filterable
          ? 'NOT_IN_CATALOGUE'
          : exclusion === 'EXCLUDE_PURCHASED' || exclusion === 'EXCLUDE_SEEN'
            ? exclusion
            : clause
              ? 'FILTER'
              : capped
                ? 'MAX_PER_CATEGORY'
                : 'BELOW_CUT';
        const boosts = filterable ? boostOf(rules.boosts, filterable).applied.map(boostRule) : [];
        removed.push({ item, source, score, boosts, removedBy, clause: removedBy === 'FILTER' ? clause : null });
      };
      for (const pin of rules.pins) {
        const item = this.#catalog.get(pin.itemId);
        if (item) consider(item, 'PINNED', 0);
      }
      // The same sources, unfiltered: what the rules took away.
      const sources = this.#sources(
        userId,
        context,
        { ...rules, filter: NO_RULES.filter },
        null,
        context.recent,
        0,
        serving.assignment,
      );
      for (const source of sources.slice(0, -1)) {
        for (const candidate of await source.next(Math.max(k, PREVIEW_PER_SOURCE), (id) => !seen.has(id))) {
          consider(candidate.item, candidate.source, candidate.score);
        }
      }
      return { list, removed };
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
  }

  #checkRequest(request: RuleRequest, k: number): CheckedRequest {
    const placementId = request.placement ?? null;
    if (placementId !== null) {
      checkPlacementId('placement', placementId);
      if (!this.#placements.get(placementId)) throw unknownPlacement('placement', placementId);
    }
    return { placementId, rules: request.rules ? checkRules('rules', request.rules, k) : undefined };
  }

  /** The request's rules merged with its placement's as it stands now (a deleted placement adds nothing). */
  #rulesOf(request: CheckedRequest, k: number): EffectiveRules {
    const placement = request.placementId === null ? undefined : this.#placements.get(request.placementId);
    return mergeRules(placement?.rules, request.rules, k);
  }

  /**
   * What a shopper's list serves now: under an experiment covering the request's placement, the variant's
   * rules (its inline rules, or its placement's) take the place of the request's placement's; the request's
   * own rules still apply on top. Outside an experiment, the request's rules as `#rulesOf` merges them.
   */
  #servingOf(userId: string, request: CheckedRequest, k: number): Serving {
    const assignment = this.#experiments?.assign(userId, request.placementId) ?? null;
    const variant = assignment?.variant;
    if (!variant || (variant.rules === null && variant.placement === null)) {
      return { rules: this.#rulesOf(request, k), assignment };
    }
    const base = variant.rules ?? this.#placements.get(variant.placement ?? '')?.rules;
    return { rules: mergeRules(base, request.rules, k), assignment };
  }

  /** Counts an experiment list in the impression log. */
  #served(list: RecommendationList, assignment: Assignment | null): void {
    if (assignment) this.#experiments?.served(list.userId, assignment);
  }

  async #rankOrFail(userId: string, k: number, serving: Serving, causedBy: UserChanged | null): Promise<Ranked> {
    try {
      return await this.#rank(userId, k, serving, causedBy);
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
  }

  /** What the shopper's state excludes, and the reads the sources share (all in one round trip's time). */
  async #shopperContext(userId: string, rules: EffectiveRules, assignment: Assignment | null = null) {
    // A variant's pinned version, else the current one: its vector (folded in only for the current version;
    // a pinned one ranks by the trained row) or its history ranking.
    const pinned = assignment?.variant.modelVersion ?? undefined;
    const versionId = pinned ?? this.#models.currentVersionId;
    const seenSince = rules.excludeSeenWithinHours;
    // An item-to-item version ranks by the shopper's latest items (no folded-in vector: the worker makes none).
    const fromHistory =
      pinned === undefined ? this.#models.servesFromHistory : this.#models.versionServesFromHistory(pinned);
    // These reads run for every push: in parallel, and the seen window only when a rule asks for it.
    const [bought, vector, seen, history] = await Promise.all([
      rules.excludePurchased ? this.#fallback.boughtItems(userId) : new Set<string>(),
      versionId === undefined || fromHistory ? undefined : this.#vectors.get(userId, versionId),
      seenSince === null ? undefined : this.#features.touchedSince(userId, Date.now() - seenSince * 3600_000),
      fromHistory ? this.#features.recentHistory(userId, SERVED_HISTORY_ITEMS) : undefined,
    ]);
    let recent: Promise<string[]> | undefined;
    return {
      bought,
      history,
      foldedIn: vector && versionId !== undefined ? { versionId, vector } : undefined,
      excluded: (id: string): Exclusion | null =>
        bought.has(id) ? 'EXCLUDE_PURCHASED' : seen?.has(id) ? 'EXCLUDE_SEEN' : null,
      /** The shopper's latest items, read once per ranking and only when a source needs them. */
      recent: () => {
        recent ??= this.#features.recentItems(userId, CO_VISIT_SEEDS);
        return recent;
      },
    };
  }

  /** The candidate sources of a shopper's list, in fill order. */
  #sources(
    userId: string,
    shopper: {
      foldedIn: { versionId: number; vector: Float32Array } | undefined;
      history: readonly HistoryEntry[] | undefined;
    },
    rules: EffectiveRules,
    reach: ListReach | null,
    recent: () => Promise<readonly string[]>,
    skipHint = 0,
    assignment: Assignment | null = null,
  ): CandidateSource[] {
    const features = this.#features;
    const catalog = this.#catalog;
    const models = this.#models;
    // While a rebuild has replayed only part of the log, co-visitation is half there: left out meanwhile.
    const rebuilding = this.#fallback.rebuilding;
    const variant = assignment?.variant;
    const trending = trendingSource({
      trending: this.#fallback,
      catalog,
      skipHint,
      narrow: rules.filter.narrow,
      reach,
    });
    const catalogue = catalogueSource({ catalog, filter: rules.filter, reach });
    // A trending-only control: nothing personal, the shop's trending then its catalogue.
    if (variant?.strategy === 'trending') return [trending, catalogue];
    const versionId = variant?.modelVersion ?? undefined;
    return [
      learnedSource({ models, catalog, userId, ...shopper, filter: rules.filter, reach, versionId }),
      // Without a model (or a vector for the shopper): what other shoppers touched in the same sessions as this
      // shopper's latest items, then the items nearest to those by the model's item vectors.
      ...(rebuilding ? [] : [coVisitedSource({ features, catalog, seeds: recent, reach })]),
      similarSource({ models, catalog, anchors: recent, filter: rules.filter, reach, versionId }),
      // Trending from the fallback: the features' ranking, or during a rebuild the last complete one.
      trending,
      // Too little signal (a new shop, a narrow filter, a shopper who bought nearly everything).
      catalogue,
    ];
  }

  async #rank(userId: string, k: number, serving: Serving, causedBy: UserChanged | null): Promise<Ranked> {
    const { rules, assignment } = serving;
    const context = await this.#shopperContext(userId, rules, assignment);
    const reach: ListReach = { learned: null, coVisitBlocked: null, trendingCut: null, open: false };
    const sources = this.#sources(userId, context, rules, reach, context.recent, context.bought.size, assignment);
    const items = await this.#merge(k, rules, sources, context.excluded, assignment?.variant.modelVersion ?? undefined);
    // Boosts, pins, a cap or diversity can let an item in that the sources' order alone would not: any may enter.
    if (rules.reorders) reach.open = true;
    const learned = items.find((r) => r.explanation.source === 'LEARNED');
    // Only an item-to-item version's learned items have an anchor (the history item behind each).
    const learnedStrategy = learned?.explanation.anchorItem ? 'item-to-item' : 'als';
    const list: RecommendationList = {
      recommendationId: assignment ? (this.#experiments?.recommendationId(assignment) ?? randomUUID()) : randomUUID(),
      experiment: assignment
        ? { id: assignment.experiment.id, variant: assignment.variant.name, phase: assignment.experiment.phase }
        : null,
      userId,
      items,
      strategy: learned
        ? learnedStrategy
        : items.some((r) => r.explanation.source === 'CO_VISITED')
          ? 'co-visited'
          : 'trending',
      modelVersion: learned?.explanation.modelVersion ?? null,
      generatedAt: new Date(),
      causedBy,
      change: null,
    };
    return { list, reach };
  }

  /**
   * The one merge loop: pins that pass the filter take their positions; the sources are asked in turn for
   * candidates the filter and exclusions accept (a category already at its cap accepts no more) until the pool
   * holds what the list needs (k, or POOL_FACTOR × k when rules reorder it); `selectList` makes the list.
   */
  async #merge(
    k: number,
    rules: EffectiveRules,
    sources: readonly CandidateSource[],
    excluded: (itemId: string) => Exclusion | null,
    /** A version an experiment variant pins, for diversity's item similarities. */
    versionId?: number,
  ): Promise<Recommendation[]> {
    const catalog = this.#catalog;
    const filter = rules.filter;
    const pins: { pin: EffectivePin; item: Item }[] = [];
    const taken = new Set<string>();
    for (const pin of rules.pins) {
      const item = catalog.get(pin.itemId);
      const filterable = catalog.filterable(pin.itemId);
      if (!item || !filterable || excluded(pin.itemId) !== null || failedClause(filter, filterable) !== null) continue;
      pins.push({ pin, item });
      taken.add(item.id);
    }
    const slots = k - pins.length;
    const cap = rules.maxPerCategory;
    const perCategory = new Map<string, number>();
    const atCap = (category: string | null) =>
      cap !== null && category !== null && (perCategory.get(category) ?? 0) >= cap;
    const countIn = (category: string | null) => {
      if (cap !== null && category !== null) perCategory.set(category, (perCategory.get(category) ?? 0) + 1);
    };
    for (const { item } of pins) countIn(item.category);
    const accept = (id: string): boolean => {
      if (taken.has(id) || excluded(id) !== null) return false;
      const filterable = catalog.filterable(id);
      return filterable !== undefined && !atCap(filterable.category) && failedClause(filter, filterable) === null;
    };
    const pool: Candidate[] = [];
    // Rules that reorder get more candidates to choose from, from the sources the list needs anyway: once the
    // slots can be filled the loop moves to no further source (a cap may leave fewer than `target` in reach).
    const target = rules.reorders ? Math.min(MAX_POOL, Math.max(slots, POOL_FACTOR * k)) : slots;
    for (const source of sources) {
      for (let calls = 0; calls < MAX_CALLS_PER_SOURCE && pool.length < slots && !source.exhausted; calls++) {
        const got = await source.next(target - pool.length, accept);
        for (const candidate of got) {
          const { id, category } = candidate.item;
          // Re-checked: a source's one answer may hold more of a category than its cap leaves room for.
          if (taken.has(id) || atCap(category)) continue;
          taken.add(id);
          countIn(category);
          pool.push(candidate);
        }
        if (got.length === 0) break;
      }
      if (pool.length >= slots) break;
    }
    const selection = selectList({
      pool,
      pins,
      k,
      rules,
      filterableOf: (id) => catalog.filterable(id),
      similarity: rules.diversity > 0 ? this.#models.similarity(versionId) : undefined,
    });
    return selection.items.map(({ item, candidate, boosts, pin }) => {
      const source: ItemSource = candidate?.source ?? 'PINNED';
      const applied = boosts.map(boostRule);
      if (pin)
        applied.push({ kind: 'PIN', origin: pin.origin, index: pin.index, factor: null, position: pin.position });
      const anchorId = candidate?.anchorItemId ?? null;
      return {
        item,
        score: candidate?.score ?? 0,
        reason: REASONS[source],
        explanation: {
          source,
          anchorItem: anchorId === null ? null : (catalog.get(anchorId) ?? null),
          rules: applied,
          modelVersion: candidate?.modelVersion ?? null,
        },
      };
    });
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
      const trending = await this.#fallback.trending(page, offset);
      for (const { itemId, score, logScore } of trending) {
        const item = this.#catalog.get(itemId);
        if (item && this.#catalog.isRecommendable(itemId)) yield { item, score, logScore };
      }
      if (trending.length < page) return;
    }
  }

  /**
   * "Shoppers who liked this also liked": nearest items by the current model's item vectors, then (without a
   * model, or to fill up) the items shoppers touched in the same sessions as this one; related items only, so
   * no trending or catalogue fill. The request's rules apply as on `recommend` (no shopper: nothing is
   * excluded as bought or seen).
   */
  async similar(itemId: string, k: number, request: RuleRequest = {}): Promise<Recommendation[]> {
    checkId('itemId', itemId);
    checkK('k', k);
    const rules = this.#rulesOf(this.#checkRequest(request, k), k);
    const anchor = async () => [itemId];
    const features = this.#features;
    const catalog = this.#catalog;
    const models = this.#models;
    const sources = [
      similarSource({ models, catalog, anchors: anchor, filter: rules.filter, reach: null }),
      // Not while a rebuild has replayed only part of the co-visitation counts.
      ...(this.#fallback.rebuilding ? [] : [coVisitedSource({ features, catalog, seeds: anchor, reach: null })]),
    ];
    try {
      return await this.#merge(k, rules, sources, (id) => (id === itemId ? 'ANCHOR' : null));
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
  }

  /**
   * The shopper's list now, then a fresh list whenever what they would see changes: after a processed event
   * of theirs, a catalogue change that touches the list (price, stock) or could put an item on it (see
   * `canEnter`), a new model version, or a change of the placement it names. Event-triggered recomputations
   * run at once; catalogue-, model- and placement-triggered ones wait their turn in one of the gateway's
   * pacers (see `isBulk`). Changes that arrive while a list is pending
   * or being computed fold into one recomputation, and a recomputation that changes nothing visible pushes
   * nothing. Ends, and unsubscribes, when the consumer returns.
   */
  watch(userId: string, k: number, request: RuleRequest = {}): AsyncIterable<RecommendationList> {
    checkId('userId', userId);
    checkK('k', k);
    const checked = this.#checkRequest(request, k);
    const requestRules = checked.placementId !== null || checked.rules !== undefined;
    // A shopper's experiment variant may bring rules of its own: the catalogue check then looks at the filter too.
    const hasRules = () => {
      if (requestRules) return true;
      const variant = this.#experiments?.assign(userId, checked.placementId)?.variant;
      return variant !== undefined && (variant.rules !== null || variant.placement !== null);
    };
    const servingOf = () => this.#servingOf(userId, checked, k);
    const rulesOf = () => servingOf().rules;
    const catalog = this.#catalog;
    const counts = this.#counts;
    const targeted = this.#targeted;
    const bulk = this.#bulk;
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
        // A list may wait in both pacers (a catalogue change joining a model change): whichever runs it first
        // takes what is pending, and the other run finds nothing to do.
        if (isOwn(pending.trigger)) void refresh(false);
        else (isBulk(pending.trigger) ? bulk : targeted).schedule(watched);
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
            const serving = servingOf();
            const ranked = await this.#rankOrFail(userId, k, serving, cause);
            reach = ranked.reach;
            const change = diffLists(shown, ranked.list, trigger);
            if (!change) continue;
            shown = ranked.list;
            this.#pushed(ranked.list, trigger);
            // Each push is a list served (its own recommendationId); a recomputation that changes nothing is neither.
            this.#served(ranked.list, serving.assignment);
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
        placementId: checked.placementId,
        userId,
        run: () => refresh(true),
        request(trigger, cause = null) {
          // The shopper's own event names the push even when a catalogue or model change joins it.
          pending = cause || !pending?.cause ? { trigger, cause } : pending;
          kick();
        },
        affectedBy(changed, entering, context) {
          // A pending recomputation reads the changed catalogue anyway, but one waiting in the bulk pacer may
          // wait long: a change that alters the list moves it to the catalogue pacer.
          if (pending && !isBulk(pending.trigger)) return false;
          // Mid-ranking, the list may have read the catalogue before the change.
          if (computing || !shown || !reach) return true;
          if (shown.items.some(({ item }) => changed.has(item.id))) return true;
          // Under rules a changed item may now pass the filter (a new price or category) or a boost, without
          // having become recommendable: any changed item the filter lets through may enter.
          if (hasRules()) {
            if (changed.size > MAX_ENTERING_CHECKED) return true;
            const { filter } = rulesOf();
            for (const id of changed) {
              const filterable = catalog.filterable(id);
              if (filterable && failedClause(filter, filterable) === null) return true;
            }
          }
          const last = reach;
          return entering.some((id) => canEnter(last, id, context));
        },
      };
      const unsubscribe = await this.#pubsub.onUserChanged(userId, (change) => watched.request('EVENT', change));
      this.#watched.add(watched);
      this.#metrics.subscriptionsOpen.inc();
      try {
        counts.recomputes.SUBSCRIBED++;
        const serving = servingOf();
        const first = await this.#rankOrFail(userId, k, serving, null);
        shown = first.list;
        reach = first.reach;
        this.#pushed(first.list, 'SUBSCRIBED');
        this.#served(first.list, serving.assignment);
        await push({ ...first.list, change: diffLists(undefined, first.list, 'SUBSCRIBED') });
        computing = false;
        kick();
        await stop;
      } catch (error) {
        stop(error);
      } finally {
        this.#metrics.subscriptionsOpen.dec();
        this.#watched.delete(watched);
        targeted.cancel(watched);
        bulk.cancel(watched);
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
        historyScore: (versionId, history, itemId) => this.#models.historyScore(versionId, history, itemId),
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
    this.#fallback.trendingLogScores(becameRecommendable).then(fanOut, (error: unknown) => {
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
      inFlight: this.#targeted.inFlight + this.#bulk.inFlight,
      waiting: this.#targeted.waiting + this.#bulk.waiting,
      maxInFlight: Math.max(this.#targeted.maxInFlight, this.#bulk.maxInFlight),
      rate: this.#bulk.rate,
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

function boostRule(boost: { origin: RuleOrigin; index: number; factor: number }): AppliedRule {
  return { kind: 'BOOST', origin: boost.origin, index: boost.index, factor: boost.factor, position: null };
}
