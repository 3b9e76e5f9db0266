import type { Db } from '../db/client.ts';
import { InvalidInputError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { PubSub } from '../realtime/pubsub.ts';
import { checkPlacementId, checkRules, type Rules, type RulesInput } from './rules.ts';
import { checkLength, MAX_TEXT_LENGTH } from './validation.ts';

/** Most placements a shop may keep: every gateway holds them all in memory. */
export const MAX_PLACEMENTS = 1000;

/** A named rule set, as stored. */
export interface Placement {
  id: string;
  description: string | null;
  rules: Rules;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Named rule sets, stored in Postgres and mirrored in memory on every gateway (at most MAX_PLACEMENTS, so a
 * request reads its placement without a query). A change is announced over pub/sub; each gateway reloads that
 * placement and tells its listeners, which recompute the subscriptions that use it.
 */
export class PlacementService {
  readonly #db: Db;
  readonly #pubsub: PubSub;
  readonly #logger: Logger;
  readonly #placements = new Map<string, Placement>();
  readonly #listeners = new Set<(placementId: string) => void>();
  #stopListening: (() => Promise<void>) | undefined;

  constructor(deps: { db: Db; pubsub: PubSub; logger: Logger }) {
    this.#db = deps.db;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
  }

  async start(): Promise<void> {
    this.#stopListening = await this.#pubsub.onPlacementChanged(({ placementId, origin }) => {
      if (origin === this.#pubsub.instanceId) return;
      this.#reload(placementId).catch((error) =>
        this.#logger.error({ err: error, placementId }, 'reloading a placement failed'),
      );
    });
    for (const row of await this.#db.placement.findMany({ take: MAX_PLACEMENTS })) {
      this.#placements.set(row.id, toPlacement(row));
    }
  }

  async stop(): Promise<void> {
    await this.#stopListening?.();
  }

  /** Calls `listener` with the id of a placement that changed or went (here or on another gateway). */
  onChange(listener: (placementId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get(id: string): Placement | undefined {
    return this.#placements.get(id);
  }

  /** Every placement, by id. */
  list(): Placement[] {
    return [...this.#placements.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Creates or replaces a placement; its subscriptions on every gateway get fresh lists. */
  async upsert(id: string, description: string | null, input: RulesInput): Promise<Placement> {
    checkPlacementId('id', id);
    if (description !== null) checkLength('description', description, MAX_TEXT_LENGTH);
    const rules = checkRules('rules', input);
    if (!this.#placements.has(id) && this.#placements.size >= MAX_PLACEMENTS) {
      throw new InvalidInputError('id', 'maxItems', `at most ${MAX_PLACEMENTS} placements; delete one first`);
    }
    const row = await this.#db.placement.upsert({
      where: { id },
      create: { id, description, rules },
      update: { description, rules },
    });
    const placement = toPlacement(row);
    this.#changed(id, placement);
    await this.#announce(id);
    return placement;
  }

  /** Deletes a placement; false when there was none. Subscriptions that named it keep their own rules only. */
  async delete(id: string): Promise<boolean> {
    checkPlacementId('id', id);
    const { count } = await this.#db.placement.deleteMany({ where: { id } });
    this.#changed(id, undefined);
    await this.#announce(id);
    return count > 0;
  }

  async #announce(placementId: string): Promise<void> {
    await this.#pubsub
      .publishPlacementChanged({ placementId })
      .catch((error) => this.#logger.warn({ err: error, placementId }, 'announcing a placement change failed'));
  }

  async #reload(id: string): Promise<void> {
    const row = await this.#db.placement.findUnique({ where: { id } });
    this.#changed(id, row ? toPlacement(row) : undefined);
  }

  #changed(id: string, placement: Placement | undefined): void {
    if (placement) this.#placements.set(id, placement);
    else this.#placements.delete(id);
    for (const listener of this.#listeners) listener(id);
  }
}

function toPlacement(row: {
  id: string;
  description: string | null;
  rules: unknown;
  createdAt: Date;
  updatedAt: Date;
}): Placement {
  // Stored by `upsert` after `checkRules`; checked again so a hand-edited row cannot break ranking.
  const rules = checkRules('rules', isRulesInput(row.rules) ? row.rules : {});
  return { id: row.id, description: row.description, rules, createdAt: row.createdAt, updatedAt: row.updatedAt };
}

function isRulesInput(value: unknown): value is RulesInput {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
