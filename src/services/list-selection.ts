import type { Item } from '../generated/prisma/client.ts';
import type { Candidate } from './candidate-sources.ts';
import { boostOf, type EffectiveBoost, type EffectivePin, type EffectiveRules, type FilterableItem } from './rules.ts';

/** A candidate on the final list, where it sits and which rules moved it. */
export interface Placed {
  item: Item;
  /** 1-based. */
  position: number;
  /** The candidate it came from; null for a pinned item. */
  candidate: Candidate | null;
  /** The product of the matching boosts' factors (1 without). */
  factor: number;
  boosts: readonly EffectiveBoost[];
  pin: EffectivePin | null;
}

/** Why a pooled candidate is not on the list. */
export type CutReason = 'MAX_PER_CATEGORY' | 'BELOW_CUT';

export interface Selection {
  items: Placed[];
  /** Pooled candidates left off, by item id. */
  cut: Map<string, CutReason>;
}

/**
 * The final list from a pool of candidates (in source order, best first within each source) and the pins that
 * survived the filter: pure, so the property tests can drive it directly.
 *
 * - Relevance is the reciprocal rank in the pool, `1 / (1 + index)`, times the matching boosts' factors:
 *   sources score on different scales, ranks compare across them.
 * - With `diversity` d > 0 the slots fill by maximal marginal relevance: each next item maximises
 *   `(1 − d) · relevance / top relevance − d · (highest cosine similarity to an item already on the list)`,
 *   the pins included; without `similarity` (no model) diversity changes nothing.
 * - `maxPerCategory` is a hard cap counted over the whole list, pins included; pins themselves are never cut.
 * - Pins take their positions; when the list is shorter than a pin's position the pin goes last.
 */
export function selectList(input: {
  pool: readonly Candidate[];
  pins: readonly { pin: EffectivePin; item: Item }[];
  k: number;
  rules: EffectiveRules;
  filterableOf: (itemId: string) => FilterableItem | undefined;
  similarity?: ((a: string, b: string) => number) | undefined;
}): Selection {
  const { pool, pins, k, rules, filterableOf } = input;
  const slots = Math.max(0, k - pins.length);
  const cut = new Map<string, CutReason>();
  const boosted = pool.map((candidate, index) => {
    const filterable = filterableOf(candidate.item.id);
    const { factor, applied } =
      rules.boosts.length > 0 && filterable ? boostOf(rules.boosts, filterable) : { factor: 1, applied: [] };
    return { candidate, relevance: factor / (1 + index), factor, applied, index };
  });
  if (rules.boosts.length > 0) boosted.sort((a, b) => b.relevance - a.relevance || a.index - b.index);
  const cap = rules.maxPerCategory;
  const perCategory = new Map<string, number>();
  const count = (item: Item) => {
    if (cap !== null && item.category !== null) {
      perCategory.set(item.category, (perCategory.get(item.category) ?? 0) + 1);
    }
  };
  const full = (item: Item) => cap !== null && item.category !== null && (perCategory.get(item.category) ?? 0) >= cap;
  for (const { item } of pins) count(item);

  const chosen: typeof boosted = [];
  const similarity = rules.diversity > 0 ? input.similarity : undefined;
  if (!similarity) {
    for (const entry of boosted) {
      if (chosen.length === slots) {
        cut.set(entry.candidate.item.id, 'BELOW_CUT');
        continue;
      }
      if (full(entry.candidate.item)) {
        cut.set(entry.candidate.item.id, 'MAX_PER_CATEGORY');
        continue;
      }
      count(entry.candidate.item);
      chosen.push(entry);
    }
  } else {
    const lambda = 1 - rules.diversity;
    const top = boosted[0]?.relevance ?? 1;
    // The highest similarity of each remaining candidate to the list so far, updated as items join.
    const closest = new Float64Array(boosted.length).fill(Number.NEGATIVE_INFINITY);
    const taken = new Uint8Array(boosted.length);
    const joined = (id: string) => {
      boosted.forEach((entry, index) => {
        if (!taken[index]) closest[index] = Math.max(closest[index] as number, similarity(entry.candidate.item.id, id));
      });
    };
    for (const { item } of pins) joined(item.id);
    while (chosen.length < slots) {
      let best = -1;
      let bestValue = Number.NEGATIVE_INFINITY;
      for (let index = 0; index < boosted.length; index++) {
        const entry = boosted[index];
        if (!entry || taken[index] || full(entry.candidate.item)) continue;
        const redundancy = Number.isFinite(closest[index]) ? (closest[index] as number) : 0;
        const value = lambda * (entry.relevance / top) - (1 - lambda) * redundancy;
        if (value > bestValue) {
          best = index;
          bestValue = value;
        }
      }
      const entry = boosted[best];
      if (!entry) break;
      taken[best] = 1;
      count(entry.candidate.item);
      chosen.push(entry);
      joined(entry.candidate.item.id);
    }
    boosted.forEach((entry, index) => {
      if (!taken[index])
        cut.set(entry.candidate.item.id, full(entry.candidate.item) ? 'MAX_PER_CATEGORY' : 'BELOW_CUT');
    });
  }

  const items: Placed[] = [];
  const pinsLeft = [...pins];
  let next = 0;
  for (let position = 1; position <= k; position++) {
    const pinned = pinsLeft[0]?.pin.position === position ? pinsLeft.shift() : undefined;
    if (pinned) {
      items.push({ item: pinned.item, position, candidate: null, factor: 1, boosts: [], pin: pinned.pin });
      continue;
    }
    const entry = chosen[next++];
    if (!entry) break;
    items.push({
      item: entry.candidate.item,
      position,
      candidate: entry.candidate,
      factor: entry.factor,
      boosts: entry.applied,
      pin: null,
    });
  }
  // Pins past the end of a short list close it, in position order.
  for (const pinned of pinsLeft) {
    items.push({
      item: pinned.item,
      position: items.length + 1,
      candidate: null,
      factor: 1,
      boosts: [],
      pin: pinned.pin,
    });
  }
  return { items, cut };
}
