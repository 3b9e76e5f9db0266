import type { Db } from '../db/client.ts';
import { createPlaceholders, deleteStalePlaceholders, findItemRows } from '../db/placeholders.ts';

/** Declared item ids a process remembers; past this it forgets them all and learns again (one read each). */
const DECLARED_REMEMBERED = 200_000;
/** Placeholders deleted per statement when pruning. */
const PRUNE_BATCH = 1000;

/**
 * Which items an event may count for in the shop-wide features (trending, co-visitation): catalogue items, and
 * unknown ones only while they hold one of the `MAX_PLACEHOLDER_ITEMS` placeholders. Made-up item ids then grow
 * neither the Item table nor Redis without bound: beyond the cap their events are stored and shape the shopper's
 * own history, nothing shared. Declared ids are remembered (a catalogue item costs one read per process);
 * placeholders are looked up every time, since another worker may prune them.
 */
export class ItemAdmission {
  readonly #db: Db;
  readonly #cap: number;
  readonly #declared = new Set<string>();

  constructor(deps: { db: Db; maxPlaceholders: number }) {
    this.#db = deps.db;
    this.#cap = deps.maxPlaceholders;
  }

  /**
   * The ids among `itemIds` that count: declared, or placeholders (created here for unknown ids while the cap
   * allows, unless `create` is false: a replay re-reading processed events must not bring back pruned ones).
   */
  async countable(itemIds: Iterable<string>, options: { create: boolean }): Promise<Set<string>> {
    const counted = new Set<string>();
    const unknown: string[] = [];
    for (const id of new Set(itemIds)) {
      if (this.#declared.has(id)) counted.add(id);
      else unknown.push(id);
    }
    if (unknown.length === 0) return counted;
    const rows = await findItemRows(this.#db, unknown);
    if (this.#declared.size + rows.declared.length > DECLARED_REMEMBERED) this.#declared.clear();
    for (const id of rows.declared) {
      this.#declared.add(id);
      counted.add(id);
    }
    for (const id of rows.placeholders) counted.add(id);
    if (!options.create) return counted;
    const known = new Set([...rows.declared, ...rows.placeholders]);
    const missing = unknown.filter((id) => !known.has(id));
    for (const id of await createPlaceholders(this.#db, missing, this.#cap)) counted.add(id);
    return counted;
  }

  /** Deletes the placeholders not declared within `windowMs` of their creation; returns their ids. */
  async prune(windowMs: number): Promise<string[]> {
    const pruned: string[] = [];
    for (;;) {
      const batch = await deleteStalePlaceholders(this.#db, windowMs, PRUNE_BATCH);
      pruned.push(...batch);
      if (batch.length < PRUNE_BATCH) return pruned;
    }
  }
}
