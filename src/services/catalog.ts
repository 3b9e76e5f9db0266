import type { Db } from '../db/client.ts';
import { InvalidInputError } from '../errors.ts';
import type { Item } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { PubSub } from '../realtime/pubsub.ts';
import { type CompiledFilter, type FilterableItem, passes } from './rules.ts';
import { checkBatchSize, checkId, checkJson, checkLength, MAX_TEXT_LENGTH } from './validation.ts';

/** A catalogue entry as the shop sends it. Optional fields left out keep their stored value. */
export interface ItemInput {
  id: string;
  name: string;
  description?: string | null;
  category?: string | null;
  /** Decimal amount; up to two decimals are kept. */
  price?: number | null;
  currency?: string | null;
  inStock?: boolean | null;
  imageUrl?: string | null;
  attributes?: unknown;
}

const MAX_PRICE = 1e10;

function checkItem(input: ItemInput, path: string): ItemInput {
  const field = (name: string) => `${path}.${name}`;
  checkId(field('id'), input.id);
  if (input.name.trim().length === 0) throw new InvalidInputError(field('name'), 'required', 'must not be empty');
  checkLength(field('name'), input.name, MAX_TEXT_LENGTH);
  if (input.description != null) checkLength(field('description'), input.description, MAX_TEXT_LENGTH);
  if (input.category != null) checkId(field('category'), input.category);
  if (input.price != null && !(Number.isFinite(input.price) && input.price >= 0 && input.price < MAX_PRICE)) {
    throw new InvalidInputError(field('price'), 'range', `must be a non-negative amount below ${MAX_PRICE}`);
  }
  if (input.currency != null && !/^[A-Z]{3}$/.test(input.currency)) {
    throw new InvalidInputError(field('currency'), 'format', 'must be an ISO 4217 code such as EUR');
  }
  if (input.imageUrl != null) {
    checkLength(field('imageUrl'), input.imageUrl, MAX_TEXT_LENGTH);
    if (!URL.canParse(input.imageUrl))
      throw new InvalidInputError(field('imageUrl'), 'format', 'must be an absolute URL');
  }
  if (input.attributes != null && (typeof input.attributes !== 'object' || Array.isArray(input.attributes))) {
    throw new InvalidInputError(field('attributes'), 'type', 'must be a JSON object');
  }
  checkJson(field('attributes'), input.attributes);
  return input;
}

/** Items whose mirror entry changed, as `CatalogService.onChange` reports them. */
export interface CatalogChange {
  itemIds: readonly string[];
  /**
   * Those of `itemIds` that were not recommendable before and are now (new, or back in stock): the only ones
   * that can enter a list that does not show them already.
   */
  becameRecommendable: readonly string[];
}

/**
 * The catalogue: stored in Postgres, mirrored in memory so that recommendations hydrate items without a
 * query. Every replica's mirror follows changes through pub/sub.
 */
export class CatalogService {
  readonly #db: Db;
  readonly #pubsub: PubSub;
  readonly #logger: Logger;
  readonly #maxBatch: number;
  /** Declared items by id (placeholders never enter). */
  readonly #items = new Map<string, Item>();
  /** What rule filters read of each item (price as a number), by id; same keys as #items. */
  readonly #filterable = new Map<string, FilterableItem>();
  /** category → ids of the items in it, so a category filter scans only those (bounded by the catalogue). */
  readonly #byCategory = new Map<string, Set<string>>();
  readonly #listeners = new Set<(change: CatalogChange) => void>();
  #stopListening: (() => Promise<void>) | undefined;
  #ownAnnouncementsSkipped = 0;

  constructor(deps: { db: Db; pubsub: PubSub; logger: Logger; maxBatch: number }) {
    this.#db = deps.db;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
    this.#maxBatch = deps.maxBatch;
  }

  /** Loads the mirror and starts following other replicas' changes. */
  async start(): Promise<void> {
    this.#stopListening = await this.#pubsub.onCatalogChanged(({ itemIds, origin }) => {
      // Our own announcement: upsert already updated the mirror and told the listeners.
      if (origin === this.#pubsub.instanceId) {
        this.#ownAnnouncementsSkipped++;
        return;
      }
      this.#reload(itemIds).catch((error) => this.#logger.error({ err: error }, 'catalogue refresh failed'));
    });
    const items = await this.#db.item.findMany({ where: { placeholder: false } });
    for (const item of items) this.#put(item);
  }

  /** Puts one item in the mirror and its indexes. */
  #put(item: Item): void {
    const before = this.#filterable.get(item.id)?.category ?? null;
    this.#items.set(item.id, item);
    this.#filterable.set(item.id, {
      id: item.id,
      category: item.category,
      price: item.price === null ? null : item.price.toNumber(),
      inStock: item.inStock,
      attributes: item.attributes,
    });
    if (before === item.category) return;
    if (before !== null) this.#byCategory.get(before)?.delete(item.id);
    if (item.category !== null) {
      let members = this.#byCategory.get(item.category);
      if (!members) {
        members = new Set();
        this.#byCategory.set(item.category, members);
      }
      members.add(item.id);
    }
  }

  async stop(): Promise<void> {
    await this.#stopListening?.();
  }

  /** Calls `listener` with the items whose mirror entry changed (here or on another replica), synchronously. */
  onChange(listener: (change: CatalogChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Puts the items in the mirror and tells the listeners what changed. */
  #apply(items: readonly Item[]): void {
    if (items.length === 0) return;
    const becameRecommendable: string[] = [];
    for (const item of items) {
      if (item.inStock && !this.isRecommendable(item.id)) becameRecommendable.push(item.id);
      this.#put(item);
    }
    const change = { itemIds: items.map((item) => item.id), becameRecommendable };
    for (const listener of this.#listeners) listener(change);
  }

  /** Catalogue announcements that came back to this gateway, its own, and were not applied twice. */
  get ownAnnouncementsSkipped(): number {
    return this.#ownAnnouncementsSkipped;
  }

  get size(): number {
    return this.#items.size;
  }

  get(id: string): Item | undefined {
    return this.#items.get(id);
  }

  /** Whether the item may be shown to shoppers: declared by the shop and in stock. */
  isRecommendable(id: string): boolean {
    return this.#items.get(id)?.inStock === true;
  }

  /** Recommendable items in catalogue order, for filling a list when there is too little signal. */
  *recommendable(): Iterable<Item> {
    for (const item of this.#items.values()) if (item.inStock) yield item;
  }

  /** What rule filters read of the item, or undefined when the catalogue has no such item. */
  filterable(id: string): FilterableItem | undefined {
    return this.#filterable.get(id);
  }

  /** The categories items have, with how many items each (for dashboards and the README's examples). */
  categories(): Map<string, number> {
    return new Map([...this.#byCategory].map(([category, ids]) => [category, ids.size]));
  }

  /**
   * The items that pass `filter`, in catalogue order; an id or category filter visits only those ids or the
   * items of those categories (the category index), so a narrow filter costs no pass over the catalogue.
   */
  *scan(filter: CompiledFilter): Iterable<Item> {
    let ids: Iterable<string>;
    if (filter.itemIds !== null) ids = filter.itemIds;
    else if (filter.categories !== null) ids = this.#inCategories(filter.categories);
    else ids = this.#items.keys();
    for (const id of ids) {
      const filterable = this.#filterable.get(id);
      const item = this.#items.get(id);
      if (item && filterable && passes(filter, filterable)) yield item;
    }
  }

  *#inCategories(categories: ReadonlySet<string>): Iterable<string> {
    for (const category of categories) yield* this.#byCategory.get(category) ?? [];
  }

  /** Creates or updates items in one statement; returns them as stored. */
  async upsert(inputs: readonly ItemInput[]): Promise<Item[]> {
    checkBatchSize('items', inputs.length, this.#maxBatch);
    const seen = new Set<string>();
    inputs.forEach((input, index) => {
      checkItem(input, `items[${index}]`);
      if (seen.has(input.id)) throw new InvalidInputError(`items[${index}].id`, 'unique', `${input.id} appears twice`);
      seen.add(input.id);
    });
    if (inputs.length === 0) return [];
    const items = await this.#db.$queryRawUnsafe<Item[]>(
      `INSERT INTO "Item" ("id", "name", "description", "category", "price", "currency", "inStock", "imageUrl",
                           "attributes", "placeholder", "updatedAt")
       SELECT "id", "name", "description", "category", "price", "currency", COALESCE("inStock", true), "imageUrl",
              COALESCE("attributes", '{}'), false, now()
       FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::text[], $7::boolean[],
                   $8::text[], $9::jsonb[])
         AS t("id", "name", "description", "category", "price", "currency", "inStock", "imageUrl", "attributes")
       ON CONFLICT ("id") DO UPDATE SET
         "name" = EXCLUDED."name",
         "description" = COALESCE(EXCLUDED."description", "Item"."description"),
         "category" = COALESCE(EXCLUDED."category", "Item"."category"),
         "price" = COALESCE(EXCLUDED."price", "Item"."price"),
         "currency" = COALESCE(EXCLUDED."currency", "Item"."currency"),
         -- inStock and attributes got defaults for new rows above; for existing rows an omitted value keeps its own.
         "inStock" = COALESCE(($7::boolean[])[array_position($1::text[], EXCLUDED."id")], "Item"."inStock"),
         "imageUrl" = COALESCE(EXCLUDED."imageUrl", "Item"."imageUrl"),
         "attributes" = COALESCE(($9::jsonb[])[array_position($1::text[], EXCLUDED."id")], "Item"."attributes"),
         "placeholder" = false,
         "updatedAt" = now()
       RETURNING *`,
      inputs.map((i) => i.id),
      inputs.map((i) => i.name),
      inputs.map((i) => i.description ?? null),
      inputs.map((i) => i.category ?? null),
      inputs.map((i) => (i.price == null ? null : i.price.toFixed(2))),
      inputs.map((i) => i.currency ?? null),
      inputs.map((i) => i.inStock ?? null),
      inputs.map((i) => i.imageUrl ?? null),
      inputs.map((i) => (i.attributes == null ? null : JSON.stringify(i.attributes))),
    );
    this.#apply(items);
    await this.#pubsub
      .publishCatalogChanged({ itemIds: items.map((item) => item.id) })
      .catch((error) => this.#logger.warn({ err: error }, 'announcing a catalogue change failed'));
    return items;
  }

  /** Reloads items written to Postgres around this service (the demo load), here and on every replica. */
  async refresh(itemIds: readonly string[]): Promise<void> {
    await this.#reload(itemIds);
    await this.#pubsub.publishCatalogChanged({ itemIds: [...itemIds] });
  }

  async #reload(ids: readonly string[]): Promise<void> {
    const items = await this.#db.item.findMany({ where: { id: { in: [...ids] }, placeholder: false } });
    this.#apply(items);
  }
}
