import type { Db } from '../db/client.ts';
import { readBoughtItems, readRecentItemEvents } from '../db/events.ts';
import type { Logger } from '../logger.ts';
import { BOUGHT_ITEMS_KEPT, type EventWeights, type FeatureStore, type TrendingItem } from './features.ts';

/** How often a gateway checks whether the online features are complete (one GET of the layout marker). */
const CHECK_INTERVAL_MS = 1000;
/** Trending items kept as the last good list (read with every check); lists page through at most a few hundred. */
const LAST_GOOD_ITEMS = 1000;
/** Events the Postgres ranking reads (the newest), when a gateway has no last good list. */
const RECENT_EVENTS = 10_000;
/** How long a Postgres ranking serves before it is read again. */
const RECENT_RANKING_MS = 5000;

/** Where trending comes from: the live features, the last complete list, or the log's newest events. */
export const TrendingOrigin = { LIVE: 'live', LAST_GOOD: 'last-good', POSTGRES: 'postgres' } as const;
export type TrendingOrigin = (typeof TrendingOrigin)[keyof typeof TrendingOrigin];

interface Ranking {
  /** Best first, with their stored log scores. */
  items: { itemId: string; logScore: number }[];
  at: number;
}

/**
 * Keeps lists honest while the online features are rebuilt (a replay after Redis lost them: the layout marker
 * is missing until it ends). Meanwhile trending comes from the last complete list this gateway kept (refreshed
 * with every check while the features are whole), or, on a gateway that never saw them whole, from the
 * newest events in Postgres ranked the same way; a shopper's bought items come from Postgres; and
 * co-visitation, half replayed, is left out. Once the marker is back, everything reads Redis again.
 */
export class RebuildFallback {
  readonly #features: FeatureStore;
  readonly #db: Db;
  readonly #logger: Logger;
  readonly #halfLifeMs: number;
  readonly #weights: EventWeights;
  #rebuilding = false;
  #lastGood: Ranking | undefined;
  #recent: Ranking | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checks: Promise<void> = Promise.resolve();
  #pending = 0;
  /** Told when a rebuild ends: the gateway's watched lists, which fell back meanwhile (one listener per service). */
  readonly #completed: (() => void)[] = [];

  constructor(deps: { features: FeatureStore; db: Db; logger: Logger; halfLifeHours: number; weights: EventWeights }) {
    this.#features = deps.features;
    this.#db = deps.db;
    this.#logger = deps.logger;
    this.#halfLifeMs = deps.halfLifeHours * 3600_000;
    this.#weights = deps.weights;
  }

  /** Checks once, then every second until `stop()`. */
  async start(): Promise<void> {
    await this.check();
    this.#timer = setInterval(() => {
      // A check that has not answered yet (Redis slow) is not joined by another.
      if (this.#pending === 0) void this.check();
    }, CHECK_INTERVAL_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Calls `listener` each time a check finds a rebuild over (the features whole again after one). */
  onComplete(listener: () => void): void {
    this.#completed.push(listener);
  }

  /** Whether the features were being rebuilt at the last check. */
  get rebuilding(): boolean {
    return this.#rebuilding;
  }

  /** Where `trending` reads from now. */
  get origin(): TrendingOrigin {
    if (!this.#rebuilding) return TrendingOrigin.LIVE;
    return this.#lastGood ? TrendingOrigin.LAST_GOOD : TrendingOrigin.POSTGRES;
  }

  /**
   * Looks at the layout marker, and takes the last good list while the features are complete. Checks run one
   * after another: one asked for while another runs starts after it, so it sees what was written before.
   */
  check(): Promise<void> {
    this.#pending++;
    this.#checks = this.#checks.then(() => this.#check()).finally(() => this.#pending--);
    return this.#checks;
  }

  async #check(): Promise<void> {
    try {
      const rebuilding = await this.#features.needsRebuild();
      if (rebuilding !== this.#rebuilding) {
        this.#logger.info(
          { rebuilding, trending: rebuilding ? (this.#lastGood ? 'last good list' : 'postgres') : 'live' },
          rebuilding ? 'online features are being rebuilt; lists fall back' : 'online features are complete again',
        );
      }
      const completed = this.#rebuilding && !rebuilding;
      this.#rebuilding = rebuilding;
      if (!rebuilding) this.#recent = undefined;
      if (completed) for (const listener of this.#completed) listener();
      if (!rebuilding) {
        const items = await this.#features.trending(LAST_GOOD_ITEMS);
        // A replay that started meanwhile deletes the marker before anything else: keep only a whole list.
        if (!(await this.#features.needsRebuild()))
          this.#lastGood = items.length ? { items, at: Date.now() } : undefined;
      }
    } catch (error) {
      // Redis down: nothing is being rebuilt that this gateway knows of; lists read Redis and answer
      // UNAVAILABLE until it is back. The last good list is kept for a rebuild after it.
      this.#rebuilding = false;
      this.#logger.debug({ err: error }, 'checking the feature layout failed');
    }
  }

  /** A page of the trending ranking, best first, as `FeatureStore#trending` gives it. */
  async trending(count: number, offset = 0): Promise<TrendingItem[]> {
    if (!this.#rebuilding) {
      const live = await this.#features.trending(count, offset);
      // A short page may be a Redis that came back empty since the last check: look now, not within a second.
      if (live.length === count || !(await this.#features.needsRebuild())) return live;
      this.#rebuilding = true;
    }
    const ranking = this.#lastGood ?? (await this.#recentRanking());
    const top = ranking.items[0]?.logScore ?? 0;
    return ranking.items
      .slice(offset, offset + count)
      .map(({ itemId, logScore }) => ({ itemId, logScore, score: 2 ** (logScore - top) }));
  }

  /** The trending log scores of these items, from the same source as `trending`. */
  async trendingLogScores(itemIds: readonly string[]): Promise<Map<string, number>> {
    if (!this.#rebuilding) return this.#features.trendingLogScores(itemIds);
    const ranking = this.#lastGood ?? (await this.#recentRanking());
    const scores = new Map(ranking.items.map(({ itemId, logScore }) => [itemId, logScore]));
    const found = new Map<string, number>();
    for (const id of itemIds) {
      const score = scores.get(id);
      if (score !== undefined) found.set(id, score);
    }
    return found;
  }

  /** The shopper's bought items: from Redis, or from the log while Redis holds only part of them. */
  async boughtItems(userId: string): Promise<Set<string>> {
    if (!this.#rebuilding) return this.#features.boughtItems(userId);
    return new Set(await readBoughtItems(this.#db, userId, BOUGHT_ITEMS_KEPT));
  }

  /**
   * The newest events' items ranked as trending ranks them (log2 of the forward-decayed weighted sum, so the
   * scores compare), cached for a few seconds: a bounded read, never a scan of the log.
   */
  async #recentRanking(): Promise<Ranking> {
    if (this.#recent && Date.now() - this.#recent.at < RECENT_RANKING_MS) return this.#recent;
    const scores = new Map<string, number>();
    for (const event of await readRecentItemEvents(this.#db, RECENT_EVENTS)) {
      const weight = this.#weights[event.type];
      if (!event.itemId || weight <= 0) continue;
      const add = Math.log2(weight) + event.occurredAt.getTime() / this.#halfLifeMs;
      const current = scores.get(event.itemId);
      if (current === undefined) {
        scores.set(event.itemId, add);
      } else {
        const high = Math.max(current, add);
        scores.set(event.itemId, high + Math.log2(1 + 2 ** (Math.min(current, add) - high)));
      }
    }
    const items = [...scores]
      .map(([itemId, logScore]) => ({ itemId, logScore }))
      .sort((a, b) => b.logScore - a.logScore)
      .slice(0, LAST_GOOD_ITEMS);
    this.#recent = { items, at: Date.now() };
    return this.#recent;
  }
}
