import type { HistoryQuery } from './models.ts';

/** Co-visited candidates remembered per list as blocked; a list that skipped more counts as open to them all. */
export const MAX_BLOCKED_CO_VISITS = 8;

/**
 * What a watched list's last ranking leaves behind so that a catalogue change can tell, without ranking again,
 * whether an item that just became recommendable (new, or back in stock) could enter the list. Each field is
 * set only when the ranking consulted that source, in the order ranking fills a list: learned, co-visited,
 * trending, catalogue. Small on purpose (one per open subscription): a few numbers, a copy of the shopper
 * vector (factors × 4 bytes) and at most MAX_BLOCKED_CO_VISITS ids.
 */
export interface ListReach {
  /** The learned part, when the model knew the shopper. */
  learned: {
    versionId: number;
    /** The shopper vector it was ranked with (a copy, so an old version's arrays are not kept alive). */
    query: Float32Array;
    /**
     * An item-to-item version's list: the history it was ranked with (a copy, at most SERVED_HISTORY_ITEMS
     * rows); scores then come from the version's neighbour table, and `query` is empty.
     */
    history?: HistoryQuery;
    /** The last learned item's score. */
    threshold: number;
    /** The learned part filled the list through the unfiltered walk, so `threshold` decides entry exactly. */
    exact: boolean;
  } | null;
  /**
   * Co-visited candidates skipped because they were not recommendable, ahead of where the list filled up;
   * `any` when there were more than MAX_BLOCKED_CO_VISITS.
   */
  coVisitBlocked: readonly string[] | 'any' | null;
  /** The stored trending score (`TrendingItem.logScore`) of the last trending item, when trending filled the list. */
  trendingCut: number | null;
  /** The list was topped up from the catalogue, or is short of k: any recommendable item may enter. */
  open: boolean;
}

/** What the rule reads besides the list's reach; gathered once per catalogue change, not per list. */
export interface EntryContext {
  /** The model version answering now. */
  currentVersionId: number | undefined;
  /** An item's score for a shopper vector in a version; undefined when the version has no vector for it. */
  modelScore(versionId: number, query: Float32Array, itemId: string): number | undefined;
  /**
   * An item's score for a history in an item-to-item version; undefined when no history row reaches it.
   * Without it, a list ranked from a history is open to every entering item.
   */
  historyScore?(versionId: number, history: HistoryQuery, itemId: string): number | undefined;
  /** Current stored trending scores of the entering items; null when they could not be read. */
  trending: ReadonlyMap<string, number> | null;
}

/**
 * Whether an item that just became recommendable could enter a list ranked as `reach` describes. Never
 * false for an item a fresh ranking would put on the list, as of the features the last ranking read:
 * - learned (an item-to-item version's list reads its score from the history × table, a vector model's from
 *   the shopper vector; the same rule for both): an exact list (filled by the unfiltered walk, which does not depend on eligibility) takes the
 *   item exactly when its score reaches the last learned score (less a rounding margin); a list from the
 *   filtered walk, whose path eligibility changes, takes any item the model has a vector for
 *   (over-approximation), and a list ranked by a version no longer current is recomputed by the activation
 *   anyway (true);
 * - co-visited: only a candidate the ranking skipped as not recommendable can enter; the candidates come from
 *   Redis, independent of the catalogue (exact; `any` over-approximates);
 * - trending: the item enters at most when its stored score reaches the last trending item's score at ranking
 *   time; stored scores only grow, so comparing against the old cut errs towards true;
 * - catalogue-filled or short lists take anything (over-approximation for the catalogue fill).
 * Drift the list has not seen (other shoppers' sessions, trending moves since its ranking) is outside this
 * rule: it shows at the shopper's next event, as it does for items that were recommendable all along.
 */
export function canEnter(reach: ListReach, itemId: string, context: EntryContext): boolean {
  if (reach.open) return true;
  const { learned } = reach;
  if (learned) {
    if (learned.versionId !== context.currentVersionId) return true;
    if (learned.history && !context.historyScore) return true;
    const score = learned.history
      ? context.historyScore?.(learned.versionId, learned.history, itemId)
      : context.modelScore(learned.versionId, learned.query, itemId);
    const margin = 1e-6 * Math.max(1, Math.abs(learned.threshold));
    if (score !== undefined && (!learned.exact || score >= learned.threshold - margin)) return true;
  }
  const blocked = reach.coVisitBlocked;
  if (blocked === 'any' || blocked?.includes(itemId)) return true;
  if (reach.trendingCut !== null) {
    if (context.trending === null) return true;
    const score = context.trending.get(itemId);
    if (score !== undefined && score >= reach.trendingCut) return true;
  }
  return false;
}
