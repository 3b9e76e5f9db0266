import type { ChainableCommander, Redis, Result } from 'ioredis';
import type { Db } from '../db/client.ts';
import { loadModelVectors, toFloat32 } from '../db/models.ts';
import type { Logger } from '../logger.ts';
import { addGram, type ConfidenceParams } from '../model/als-kernel.ts';
import { type ContentMapping, contentVector, type ItemContent } from '../model/content.ts';
import { fitContentMappingOffThread } from '../model/content-thread.ts';
import { type FoldInModel, foldIn, makeFoldInScratch } from '../model/fold-in.ts';
import { vectorFromNeighbours } from '../model/neighbour-vector.ts';
import type { FeatureStore, Histories } from './features.ts';
import type { NewItemVectors } from './new-item-vectors.ts';

/** Co-visited neighbours a new item's vector is averaged from. */
const NEW_ITEM_NEIGHBOURS = 20;
/** A new item's vector is derived again after this long, as its co-visitation counts grow. */
const NEW_ITEM_REFRESH_MS = 60_000;
/** Cold items given content vectors between two yields of the event loop (each takes tens of µs). */
const CONTENT_BATCH = 200;
/** What the content mapping reads of an item. */
const CONTENT_FIELDS = { id: true, name: true, description: true, category: true, attributes: true } as const;

/**
 * Stores a shopper's vector for one model version (ARGV[1]) in their vector hash (KEYS[1]) and keeps besides
 * it only the one of the highest other version: a gateway still serving the previous version during a swap
 * finds its vector, and retrains cannot pile up vectors. The hash expires with the shopper's features (ARGV[3] ms).
 * Nothing is stored when the shopper has no state (KEYS[2], their applied-id window, is gone): they were erased
 * or withdrew consent while this vector was being computed.
 */
const STORE_VECTOR_LUA = `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local versions = redis.call('HKEYS', KEYS[1])
if #versions > 2 then
  local kept = nil
  for _, version in ipairs(versions) do
    if version ~= ARGV[1] and (kept == nil or tonumber(version) > tonumber(kept)) then kept = version end
  end
  for _, version in ipairs(versions) do
    if version ~= ARGV[1] and version ~= kept then redis.call('HDEL', KEYS[1], version) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pgwStoreVector(
      key: string,
      stateKey: string,
      versionId: string,
      vector: Buffer,
      ttlMs: string,
    ): Result<number, Context>;
  }
}

interface FoldInState {
  versionId: number;
  model: FoldInModel;
  /** Row of each item in `model.itemFactors`: the trained items first, then new items with derived vectors. */
  rows: Map<string, number>;
  trainedItems: number;
  /** Rows in use; `model.itemFactors` has room for more and is reallocated, doubled, when full. */
  usedRows: number;
  /** When a vector for a new item was last derived or tried, to bound the work per event. */
  derivedAt: Map<string, number>;
  /**
   * False for an item-to-item version (one with a neighbour table): the gateway ranks its shoppers by their
   * history × the table, so no shopper vector is folded in; new items still get vectors (similar items, ANN).
   */
  foldsIn: boolean;
  /** Maps a cold item's content to a vector: fitted on the trained items' catalogue entries at load. */
  content: ContentMapping;
  /**
   * New items whose vector came from their content, not from co-visits: a catalogue edit derives theirs
   * again, and co-visits replace it once there are any. Bounded by the catalogue.
   */
  fromContent: Set<string>;
}

/**
 * Shopper vectors kept fresh between trainings: after each processed event the worker folds the shopper's
 * history (their distinct recent items with summed event weights, kept by the feature store) into a vector
 * against the current model's item vectors (the ALS user step for that one shopper) and stores it in Redis
 * under the model version; the gateway ranks with it, so a shopper's next list reflects what they just did,
 * also when the model was trained before they first came. Items the model has not seen get a vector from
 * their co-visited neighbours, so touching a brand-new item counts too.
 */
export class ShopperVectors {
  readonly #db: Db;
  readonly #redis: Redis;
  readonly #features: FeatureStore;
  readonly #newItems: NewItemVectors;
  readonly #logger: Logger | undefined;
  #state: FoldInState | undefined;
  /** The version useVersion was last asked for: a load that an activation overtook is dropped. */
  #wanted: number | undefined;

  constructor(deps: { db: Db; redis: Redis; features: FeatureStore; newItems: NewItemVectors; logger?: Logger }) {
    this.#db = deps.db;
    this.#redis = deps.redis;
    this.#features = deps.features;
    this.#newItems = deps.newItems;
    this.#logger = deps.logger;
    deps.redis.defineCommand('pgwStoreVector', { numberOfKeys: 2, lua: STORE_VECTOR_LUA });
  }

  #key(userId: string): string {
    return this.#features.vectorsKey(userId);
  }

  /** Folds in against this model version from now on (worker side). */
  async useVersion(versionId: number): Promise<void> {
    // Set first: a rollback to the version in use while another loads must still win over that load.
    this.#wanted = versionId;
    if (this.#state?.versionId === versionId) return;
    const [version, vectors, newItems, catalogue] = await Promise.all([
      this.#db.modelVersion.findUnique({ where: { id: versionId } }),
      loadModelVectors(this.#db, versionId),
      this.#newItems.readAll(versionId),
      this.#db.item.findMany({ where: { placeholder: false }, select: CONTENT_FIELDS }),
    ]);
    if (!version || !vectors) return;
    // Trained items the catalogue no longer describes keep a row but lend no content (an empty name).
    const described = new Map(catalogue.map((item) => [item.id, item]));
    const trainedContent = vectors.itemIds.map((id): ItemContent => described.get(id) ?? { name: '' });
    const params = version.params as unknown as { lambda: number } & ConfidenceParams;
    const foldsIn = vectors.neighbours === undefined;
    // The Gram of the trained items only: fold-in then equals the training solve for a trained shopper, and
    // the few derived rows would barely move it. Not needed without fold-in.
    const itemGram = new Float64Array(foldsIn ? vectors.factors * vectors.factors : 0);
    if (foldsIn) addGram(vectors.itemFactors, vectors.factors, 0, vectors.itemIds.length, itemGram);
    // Off this event loop from a few thousand items on: the worker keeps processing events meanwhile.
    const content = await fitContentMappingOffThread(trainedContent, vectors.itemFactors, vectors.factors, {
      onFallback: (reason) =>
        this.#logger?.warn({ reason, versionId }, 'content mapping fitted on the event loop: its thread failed'),
    });
    // Loading takes seconds at a large catalogue: meanwhile another version may have been activated (and
    // loaded, or be loading), or this one loaded by a call that started later.
    if (this.#wanted !== versionId || this.#state?.versionId === versionId) return;
    const state: FoldInState = {
      versionId,
      rows: new Map(vectors.itemIds.map((id, index) => [id, index])),
      trainedItems: vectors.itemIds.length,
      usedRows: vectors.itemIds.length,
      derivedAt: new Map(),
      foldsIn,
      content,
      fromContent: new Set(),
      model: {
        factors: vectors.factors,
        lambda: params.lambda,
        alpha: params.alpha,
        confidence: params.confidence,
        epsilon: params.epsilon,
        itemFactors: vectors.itemFactors,
        itemGram,
      },
    };
    for (const [itemId, vector] of newItems) setRow(state, itemId, vector);
    this.#state = state;
  }

  /**
   * Recomputes the vectors of the shoppers with these histories (worker side) and queues storing them on
   * `pipeline`, which the caller executes; a no-op before the first model. Returns the new items whose
   * vectors it derived on the way, for the gateways to add to their index.
   */
  async refresh(
    histories: Histories,
    pipeline: ChainableCommander,
  ): Promise<{ versionId: number; newItemIds: string[] } | undefined> {
    const state = this.#state;
    if (!state || histories.size === 0) return undefined;
    const now = Date.now();
    const due = new Set<string>();
    for (const history of histories.values()) {
      for (const itemId of history.keys()) {
        const row = state.rows.get(itemId);
        if (row !== undefined && row < state.trainedItems) continue;
        if (now - (state.derivedAt.get(itemId) ?? 0) >= NEW_ITEM_REFRESH_MS) due.add(itemId);
      }
    }
    const derived = due.size ? await this.#deriveNewItems(state, [...due], now) : new Map<string, Float32Array>();

    const scratch = makeFoldInScratch(state.model.factors);
    for (const [userId, history] of state.foldsIn ? histories : []) {
      const rows: number[] = [];
      const weights: number[] = [];
      for (const [itemId, weight] of history) {
        const row = state.rows.get(itemId);
        if (row === undefined || !(weight > 0)) continue;
        rows.push(row);
        weights.push(weight);
      }
      if (rows.length === 0) continue;
      const vector = foldIn(state.model, rows, weights, undefined, scratch);
      pipeline.pgwStoreVector(
        this.#key(userId),
        this.#features.appliedIdsKey(userId),
        String(state.versionId),
        Buffer.from(vector.buffer),
        String(this.#features.shopperTtlMs),
      );
    }
    return { versionId: state.versionId, newItemIds: [...derived.keys()] };
  }

  async #deriveNewItems(state: FoldInState, itemIds: string[], now: number): Promise<Map<string, Float32Array>> {
    const coVisits = await this.#features.coVisited(itemIds, NEW_ITEM_NEIGHBOURS);
    const derived = new Map<string, Float32Array>();
    for (const [itemId, neighbours] of coVisits) {
      state.derivedAt.set(itemId, now);
      const trained = neighbours.flatMap(({ itemId: neighbour, count }) => {
        const row = state.rows.get(neighbour);
        return row !== undefined && row < state.trainedItems ? [{ row, weight: count }] : [];
      });
      const vector = vectorFromNeighbours(state.model.itemFactors, state.model.factors, trained);
      // No co-visits with trained items yet: the content vector, if the item has one, stays.
      if (!vector) continue;
      setRow(state, itemId, vector);
      state.fromContent.delete(itemId);
      derived.set(itemId, vector);
    }
    await this.#newItems.save(state.versionId, derived);
    return derived;
  }

  /**
   * Gives the catalogue items this version was not trained on, and that have no vector from co-visits, a
   * vector from their content (name, description, category, attributes) mapped into the version's space, so
   * they can be recommended and have similar items before their first event. `itemIds`: the items a
   * catalogue change named (their content may have changed); omitted, every such catalogue item. Returns the
   * items it gave vectors, for the gateways to add to their index (worker side).
   */
  async deriveColdItems(itemIds?: readonly string[]): Promise<{ versionId: number; newItemIds: string[] } | undefined> {
    const state = this.#state;
    if (!state || itemIds?.length === 0) return undefined;
    const items = await this.#db.item.findMany({
      where: { placeholder: false, ...(itemIds && { id: { in: [...itemIds] } }) },
      select: CONTENT_FIELDS,
    });
    const derived = new Map<string, Float32Array>();
    let sinceYield = 0;
    for (const item of items) {
      const row = state.rows.get(item.id);
      if (row !== undefined && (row < state.trainedItems || !state.fromContent.has(item.id))) continue;
      // A catalogue of many cold items must not hold the event loop (events apply on it) for long.
      if (++sinceYield === CONTENT_BATCH) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
        // A newer version took over meanwhile: its own derivation covers these items.
        if (this.#state !== state) return undefined;
      }
      const vector = contentVector(state.content, item);
      if (!vector) continue;
      setRow(state, item.id, vector);
      state.fromContent.add(item.id);
      derived.set(item.id, vector);
    }
    await this.#newItems.save(state.versionId, derived);
    return { versionId: state.versionId, newItemIds: [...derived.keys()] };
  }

  /** The shopper's folded-in vector for this model version, if the worker has made one (gateway side). */
  async get(userId: string, versionId: number): Promise<Float32Array | undefined> {
    const bytes = await this.#redis.hgetBuffer(this.#key(userId), String(versionId));
    return bytes ? toFloat32(bytes) : undefined;
  }
}

/** Puts a new item's derived vector in its row, appending one (and growing the matrix) for a first vector. */
function setRow(state: FoldInState, itemId: string, vector: Float32Array): void {
  const { factors } = state.model;
  let row = state.rows.get(itemId);
  if (row === undefined) {
    row = state.usedRows++;
    if (state.usedRows * factors > state.model.itemFactors.length) {
      const grown = new Float32Array(
        Math.max(state.usedRows, 2 * (state.model.itemFactors.length / factors)) * factors,
      );
      grown.set(state.model.itemFactors);
      state.model = { ...state.model, itemFactors: grown };
    }
    state.rows.set(itemId, row);
  }
  state.model.itemFactors.set(vector, row * factors);
}
