import { type AnnIndex, deserializeAnnIndex, type ItemMeta, type SearchFilter, VersionedIndex } from '../ann/index.ts';
import type { Db } from '../db/client.ts';
import {
  activateAndPinModelVersion,
  findCurrentModelVersion,
  loadModelVectors,
  type ModelVectors,
} from '../db/models.ts';
import { DomainError, ErrorCode } from '../errors.ts';
import type { ModelVersion } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { DAY_MS, recencyWeight } from '../model/interactions.ts';
import {
  type HistoryRanking,
  type HistoryWeighting,
  historyScore,
  historyWeight,
  makeRankingScratch,
  type RankingScratch,
  rankHistory,
} from '../model/neighbour-ranking.ts';
import type { NeighbourTable } from '../model/neighbour-table.ts';
import type { PubSub } from '../realtime/pubsub.ts';
import type { HistoryEntry } from './features.ts';
import type { NewItemVectors } from './new-item-vectors.ts';

/** A model version loaded for serving: its vectors, its index, and where each id sits in the vectors. */
interface LoadedModel {
  versionId: number;
  vectors: ModelVectors;
  users: Map<string, number>;
  items: Map<string, number>;
  index: AnnIndex;
  /** Vectors the worker derived for items this version was not trained on; they are in `index` too. */
  newItems: Map<string, Float32Array>;
  /** The version's NDCG@10 on its training hold-out, when it was measured. */
  ndcg10: number | undefined;
  /** An item-to-item version's table: it ranks shoppers by their history instead of a shopper vector. */
  neighbours:
    | { table: NeighbourTable; weighting: HistoryWeighting; historyHalfLifeDays: number; scratch: RankingScratch }
    | undefined;
}

/**
 * A shopper's history as a version's neighbour table reads it: item rows and the weights that multiply
 * them. At most SERVED_HISTORY_ITEMS entries, so a list's reach can keep a copy (a few hundred bytes).
 */
export interface HistoryQuery {
  rows: Int32Array;
  weights: Float32Array;
}

/** The items a shopper's history reaches through the current version's table, best first. */
export interface HistoryHits {
  versionId: number;
  query: HistoryQuery;
  ranking: HistoryRanking;
  /** The version's item ids: `ranking`'s rows and anchors index them. */
  itemIds: readonly string[];
}

/** How many times k an unfiltered search asks for before filtering (see `recommendFor`). */
const OVER_FETCH = 3;

/** A scored candidate from the model. */
export interface ModelHit {
  itemId: string;
  score: number;
}

/** The model's best items for a shopper, and how they were found. */
export interface LearnedHits {
  versionId: number;
  hits: ModelHit[];
  /** The shopper vector the hits were scored against (folded in, or the trained row; a view, not a copy). */
  query: Float32Array;
  /**
   * True when the hits are the best `eligible` items among a walk that did not depend on `eligible` (the
   * unfiltered over-fetch): then an item becoming eligible enters them exactly when its score reaches the
   * last hit's. False after the filtered walk, whose path an eligibility change can alter.
   */
  unfiltered: boolean;
}

/** How long, and how many, forgotten shoppers a gateway remembers for loads still under way. */
const FORGOTTEN_KEPT_MS = 10 * 60_000;
const FORGOTTEN_KEPT = 10_000;

/**
 * Serves the current model version: loads it at start, follows activations announced by any replica (a new
 * training, a rollback) by loading the version in the background and swapping it in atomically, and answers
 * vector queries from it.
 */
export class ModelService {
  readonly #db: Db;
  readonly #pubsub: PubSub;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #index = new VersionedIndex({ keep: 2 });
  readonly #loaded = new Map<string, LoadedModel>();
  /**
   * Versions running experiments pin, held beside the serving ones so a variant can rank by them (at most
   * MAX_PINNED_VERSIONS, which ExperimentService enforces: each costs a version's vectors and index).
   */
  readonly #pinned = new Map<string, LoadedModel>();
  /**
   * Shoppers forgotten while a version may still be loading (read from Postgres before their rows were cut):
   * a load that ends applies these too. Capped and aged out: a load takes seconds, not ten minutes.
   */
  readonly #recentlyForgotten = new Map<string, number>();
  readonly #newItems: NewItemVectors;
  readonly #listeners = new Set<(versionId: number) => void>();
  readonly #stopListening: (() => Promise<void>)[] = [];
  readonly #itemMeta: (itemId: string) => ItemMeta | undefined;

  constructor(deps: {
    db: Db;
    pubsub: PubSub;
    logger: Logger;
    metrics: Metrics;
    newItems: NewItemVectors;
    /**
     * The catalogue's facts about an item (stock, category, price), copied into each loaded index so that a
     * category or price filter is applied inside the ANN search (its filtered walk, or an exact scan of the
     * category's items when the filter is narrow) instead of after it.
     */
    itemMeta?: (itemId: string) => ItemMeta | undefined;
  }) {
    this.#db = deps.db;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#newItems = deps.newItems;
    this.#itemMeta = deps.itemMeta ?? (() => undefined);
  }

  /** Copies the catalogue's current facts about these items into every loaded index (after a catalogue change). */
  refreshMeta(itemIds: readonly string[]): void {
    for (const model of [...this.#loaded.values(), ...this.#pinned.values()]) {
      for (const id of itemIds) {
        const meta = this.#itemMeta(id);
        if (meta) model.index.setMeta(id, meta);
      }
    }
  }

  async start(): Promise<void> {
    this.#stopListening.push(
      await this.#pubsub.onModelActivated(({ versionId, origin }) => {
        // Our own announcement (a rollback here): this replica loaded the version before publishing.
        if (origin === this.#pubsub.instanceId) return;
        this.load(versionId).catch((error) =>
          this.#logger.error({ err: error, versionId }, 'loading a model version failed'),
        );
      }),
      await this.#pubsub.onShopperForgotten(({ userId }) => this.forget(userId)),
      await this.#pubsub.onItemVectorsAdded(({ versionId, itemIds }) => {
        if (!this.#loaded.has(String(versionId)) && !this.#pinned.has(String(versionId))) return;
        this.#newItems
          .read(versionId, itemIds)
          .then((vectors) => this.#addNewItems(versionId, vectors))
          .catch((error) => this.#logger.warn({ err: error, versionId }, 'loading new item vectors failed'));
      }),
    );
    const current = await findCurrentModelVersion(this.#db);
    if (current) await this.load(current.id);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#stopListening.splice(0).map((stop) => stop()));
  }

  /**
   * Drops a shopper from every loaded version: their id leaves the lookup and their row of user factors is
   * zeroed, so this process holds nothing of them (the stored artifacts were cut by the erasure itself).
   */
  forget(userId: string): void {
    const now = Date.now();
    this.#recentlyForgotten.set(userId, now);
    for (const [id, at] of this.#recentlyForgotten) {
      if (now - at <= FORGOTTEN_KEPT_MS && this.#recentlyForgotten.size <= FORGOTTEN_KEPT) break;
      this.#recentlyForgotten.delete(id);
    }
    for (const model of this.#loaded.values()) this.#dropUser(model, userId);
    for (const model of this.#pinned.values()) this.#dropUser(model, userId);
  }

  #dropUser(model: LoadedModel, userId: string): void {
    const row = model.users.get(userId);
    if (row === undefined) return;
    model.users.delete(userId);
    const f = model.vectors.factors;
    model.vectors.userFactors.fill(0, row * f, (row + 1) * f);
    model.vectors.userIds[row] = '';
  }

  /** Makes items the version was not trained on retrievable, with the vectors the worker derived for them. */
  #addNewItems(versionId: number, vectors: ReadonlyMap<string, Float32Array>): void {
    const key = String(versionId);
    for (const model of [this.#loaded.get(key), this.#pinned.get(key)]) if (model) this.#addNewItemsTo(model, vectors);
  }

  #addNewItemsTo(model: LoadedModel, vectors: ReadonlyMap<string, Float32Array>): void {
    for (const [itemId, vector] of vectors) {
      if (model.items.has(itemId)) continue;
      model.index.upsert(itemId, vector, this.#itemMeta(itemId));
      model.newItems.set(itemId, vector);
    }
  }

  /** An item's vector in a loaded version: trained, or derived since. */
  #itemVector(model: LoadedModel, itemId: string): Float32Array | undefined {
    const row = model.items.get(itemId);
    const f = model.vectors.factors;
    return row === undefined ? model.newItems.get(itemId) : model.vectors.itemFactors.subarray(row * f, (row + 1) * f);
  }

  /** Calls `listener` whenever another version starts answering here. */
  onActivated(listener: (versionId: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #activated(versionId: number): void {
    this.#metrics.setServingModel(versionId, this.#loaded.get(String(versionId))?.ndcg10);
    for (const listener of this.#listeners) listener(versionId);
  }

  /** The version answering now, if any. */
  get currentVersionId(): number | undefined {
    const current = this.#index.current;
    return current ? Number(current.version) : undefined;
  }

  /** Loads a stored version and makes it current (queries keep running on the previous one meanwhile). */
  async load(versionId: number): Promise<void> {
    const key = String(versionId);
    if (this.#loaded.has(key) && this.#index.versions().includes(key)) {
      if (this.#index.current?.version !== key) {
        this.#index.activate(key);
        this.#activated(versionId);
      }
      return;
    }
    await this.#index.load(key, async (): Promise<AnnIndex> => {
      const model = await this.#read(versionId);
      this.#loaded.set(key, model);
      return model.index;
    });
    // Forget vectors of versions the index no longer holds.
    for (const held of this.#loaded.keys()) if (!this.#index.versions().includes(held)) this.#loaded.delete(held);
    this.#logger.info({ versionId }, 'serving model version');
    if (this.#index.current?.version === key) this.#activated(versionId);
  }

  /** Reads a stored version: its vectors, its index (with the catalogue's facts), the item vectors derived since. */
  async #read(versionId: number): Promise<LoadedModel> {
    const [vectors, newItems, version] = await Promise.all([
      loadModelVectors(this.#db, versionId),
      this.#newItems.readAll(versionId),
      this.#db.modelVersion.findUnique({ where: { id: versionId }, select: { metrics: true, params: true } }),
    ]);
    if (!vectors) throw new Error(`model version ${versionId} has no artifact`);
    const index = await deserializeAnnIndex(vectors.itemIndex);
    for (const id of vectors.itemIds) {
      const meta = this.#itemMeta(id);
      if (meta) index.setMeta(id, meta);
    }
    const model: LoadedModel = {
      versionId,
      vectors,
      users: new Map(vectors.userIds.map((id, row) => [id, row])),
      items: new Map(vectors.itemIds.map((id, row) => [id, row])),
      index,
      newItems: new Map(),
      ndcg10: holdoutNdcg10(version?.metrics),
      neighbours: vectors.neighbours && {
        table: vectors.neighbours,
        weighting: historyWeightingOf(version?.params),
        historyHalfLifeDays: historyHalfLifeOf(version?.params),
        scratch: makeRankingScratch(vectors.neighbours.items),
      },
    };
    this.#addNewItemsTo(model, newItems);
    // Vectors the worker derived while this loaded (content for cold items, at its own switch to this
    // version): their announcement found the version not loaded here yet.
    this.#addNewItemsTo(model, await this.#newItems.readAll(versionId));
    // Shoppers forgotten while this version's rows were being read.
    for (const userId of this.#recentlyForgotten.keys()) this.#dropUser(model, userId);
    return model;
  }

  /**
   * Holds exactly these versions for experiments (loading those not held yet, dropping the others), so a
   * variant pinned to one ranks by it whichever version is current. A version that fails to load is logged
   * and left out: its variant then ranks without the learned source until the next `pin`.
   */
  async pin(versionIds: readonly number[]): Promise<void> {
    const wanted = new Set(versionIds.map(String));
    for (const key of this.#pinned.keys()) if (!wanted.has(key)) this.#pinned.delete(key);
    for (const versionId of new Set(versionIds)) {
      const key = String(versionId);
      if (this.#pinned.has(key)) continue;
      try {
        this.#pinned.set(key, await this.#read(versionId));
      } catch (error) {
        this.#logger.error({ err: error, versionId }, 'loading a version an experiment pins failed');
      }
    }
  }

  /** The current version, or the given one when it is held (serving, held for a rollback, or pinned). */
  #model(versionId: number | undefined): LoadedModel | undefined {
    if (versionId !== undefined) {
      const key = String(versionId);
      return this.#pinned.get(key) ?? this.#loaded.get(key);
    }
    const current = this.#index.current;
    return current && this.#loaded.get(current.version);
  }

  /**
   * Makes an earlier READY version current on every replica and pins it: later trainings leave it serving
   * unless they beat it on the hold-out by MODEL_PIN_MARGIN, or an operator unpins it.
   */
  async rollback(versionId: number): Promise<ModelVersion> {
    const version = await activateAndPinModelVersion(this.#db, versionId);
    if (!version) {
      throw new DomainError(ErrorCode.NOT_FOUND, `versionId: no trained (READY) model version ${versionId}`, {
        field: 'versionId',
        rule: 'exists',
      });
    }
    await this.load(versionId);
    await this.#pubsub.publishModelActivated({ versionId });
    return version;
  }

  /**
   * The shopper's best items by the current model, best first, among those `eligible` accepts; undefined when
   * there is no model or no vector for the shopper (neither trained nor folded in).
   */
  recommendFor(
    userId: string,
    k: number,
    eligible: (itemId: string) => boolean,
    foldedIn?: { versionId: number; vector: Float32Array },
    /** Category and price constraints the index applies itself (see `itemMeta`); `eligible` still decides. */
    narrow?: Pick<SearchFilter, 'categories' | 'minPrice' | 'maxPrice'>,
    /** A version an experiment pins (see `pin`) instead of the current one; undefined when it is not held. */
    versionId?: number,
  ): LearnedHits | undefined {
    const model = this.#model(versionId);
    if (!model) return undefined;
    const current = model;
    // A vector folded in since training (it reflects the shopper's latest events) beats the trained one.
    let query = foldedIn?.versionId === model.versionId ? foldedIn.vector : undefined;
    const row = model.users.get(userId);
    const f = model.vectors.factors;
    if (!query && row !== undefined) query = model.vectors.userFactors.subarray(row * f, (row + 1) * f);
    if (!query) return undefined;
    // Nearly every item is eligible (in stock, not bought): an unfiltered walk for a few times k, filtered
    // here, spares hnswlib a call back into JavaScript for each node it visits. Only when too few survive
    // does the filtered walk run.
    // A narrow filter goes straight to the filtered search: the over-fetch would mostly be thrown away.
    let hits = narrow ? [] : current.index.search(query, OVER_FETCH * k).filter((hit) => eligible(hit.id));
    const unfiltered = hits.length >= k;
    if (unfiltered) hits = hits.slice(0, k);
    else hits = current.index.search(query, k, { ...narrow, predicate: (id) => eligible(id) });
    return {
      versionId: model.versionId,
      hits: hits.map((hit) => ({ itemId: hit.id, score: hit.score })),
      query,
      unfiltered,
    };
  }

  /** Whether the current version serves shoppers from their history × its neighbour table (item-to-item). */
  get servesFromHistory(): boolean {
    return this.#model(undefined)?.neighbours !== undefined;
  }

  /** Whether a held version (see `#model`) serves shoppers from their history × its neighbour table. */
  versionServesFromHistory(versionId: number): boolean {
    return this.#model(versionId)?.neighbours !== undefined;
  }

  /**
   * The items the shopper's history (newest first, at most SERVED_HISTORY_ITEMS) reaches through the current
   * version's neighbour table, best first, each with the history item that contributed most; undefined
   * without an item-to-item version. Items of the history the version was not trained on count for nothing.
   * `limit`: only the best that many are ranked (`ranking.reached` says how many there were).
   */
  rankHistory(history: readonly HistoryEntry[], limit?: number, versionId?: number): HistoryHits | undefined {
    const model = this.#model(versionId);
    const neighbours = model?.neighbours;
    if (!model || !neighbours) return undefined;
    const rows: number[] = [];
    const weights: number[] = [];
    // Ages as the selection validated them: days before the shopper's newest touch.
    let newest = 0;
    for (const { touchedAt } of history) newest = Math.max(newest, touchedAt);
    for (const { itemId, weight, touchedAt } of history) {
      const row = model.items.get(itemId);
      if (row === undefined || !(weight > 0)) continue;
      rows.push(row);
      const recency = recencyWeight((newest - touchedAt) / DAY_MS, neighbours.historyHalfLifeDays);
      weights.push(historyWeight(neighbours.weighting, weight) * recency);
    }
    const query = { rows: Int32Array.from(rows), weights: Float32Array.from(weights) };
    const ranking = rankHistory(neighbours.table, query.rows, query.weights, neighbours.scratch, limit);
    return { versionId: model.versionId, query, ranking, itemIds: model.vectors.itemIds };
  }

  /**
   * The item's score for a history in this version (what `rankHistory` ranks by), or undefined when the
   * version is not loaded, has no table, or no history row reaches the item (then no ranking can offer it).
   */
  historyScore(versionId: number, query: HistoryQuery, itemId: string): number | undefined {
    const model = this.#model(versionId);
    const row = model?.items.get(itemId);
    if (!model?.neighbours || row === undefined) return undefined;
    const score = historyScore(model.neighbours.table, query.rows, query.weights, row);
    return score > 0 ? score : undefined;
  }

  /**
   * The item's score for a shopper vector in this version (the inner product `recommendFor` ranks by), or
   * undefined when the version is not loaded or has no vector for the item (then no search can return it).
   */
  itemScore(versionId: number, query: Float32Array, itemId: string): number | undefined {
    const model = this.#model(versionId);
    const vector = model && this.#itemVector(model, itemId);
    if (!vector || vector.length !== query.length) return undefined;
    let sum = 0;
    for (let i = 0; i < vector.length; i++) sum += (vector[i] as number) * (query[i] as number);
    return sum;
  }

  /**
   * Cosine similarity of two items' vectors in the current version (for diversity), or undefined without a
   * model; 0 for an item the version has no vector for.
   */
  similarity(versionId?: number): ((a: string, b: string) => number) | undefined {
    const model = this.#model(versionId);
    if (!model) return undefined;
    const norms = new Map<string, number>();
    const normOf = (id: string, vector: Float32Array) => {
      let norm = norms.get(id);
      if (norm === undefined) {
        let sum = 0;
        for (let i = 0; i < vector.length; i++) sum += (vector[i] as number) ** 2;
        norm = Math.sqrt(sum) || 1;
        norms.set(id, norm);
      }
      return norm;
    };
    return (a, b) => {
      const va = this.#itemVector(model, a);
      const vb = this.#itemVector(model, b);
      if (!va || !vb || va.length !== vb.length) return 0;
      let dot = 0;
      for (let i = 0; i < va.length; i++) dot += (va[i] as number) * (vb[i] as number);
      return dot / (normOf(a, va) * normOf(b, vb));
    };
  }

  /** Items whose vectors are closest to this item's ("shoppers who liked this also liked"). */
  similarTo(
    itemId: string,
    k: number,
    eligible: (itemId: string) => boolean,
    narrow?: Pick<SearchFilter, 'categories' | 'minPrice' | 'maxPrice'>,
    /** A version an experiment pins instead of the current one. */
    versionId?: number,
  ): { versionId: number; hits: ModelHit[] } | undefined {
    const model = this.#model(versionId);
    const vector = model && this.#itemVector(model, itemId);
    if (!model || !vector) return undefined;
    const current = model;
    // Cosine similarity: a plain inner product would favour popular items (long vectors) over similar ones.
    // The inner-product index supplies a generous candidate set, re-scored here by cosine.
    const norm = (id: string) => {
      let sum = 0;
      for (const value of this.#itemVector(model, id) ?? vector) sum += value ** 2;
      return Math.sqrt(sum) || 1;
    };
    const queryNorm = norm(itemId);
    const candidates = current.index.search(vector, Math.max(50, 5 * k), {
      ...narrow,
      exclude: [itemId],
      predicate: (id) => eligible(id),
    });
    const hits = candidates
      .map((hit) => ({ id: hit.id, score: hit.score / (queryNorm * norm(hit.id)) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
    return { versionId: model.versionId, hits: hits.map((hit) => ({ itemId: hit.id, score: hit.score })) };
  }
}

/**
 * How an item-to-item version weighs the history it multiplies its table by: `params.historyWeighting` as
 * training stored it, else `binary` (EASE and item-kNN fit on which items a shopper has).
 */
function historyWeightingOf(params: unknown): HistoryWeighting {
  const value = fieldOf(params, 'historyWeighting');
  return value === 'summed' || value === 'log' ? value : 'binary';
}

/**
 * The history recency an item-to-item version serves with: `params.historyHalfLifeDays` as its selection chose
 * it (days; see HISTORY_HALF_LIVES), else 0, every history item weighing the same.
 */
function historyHalfLifeOf(params: unknown): number {
  const value = fieldOf(params, 'historyHalfLifeDays');
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

/** `metrics['ndcg@10']` of a stored version, if it is a number. */
function holdoutNdcg10(metrics: unknown): number | undefined {
  const ndcg = fieldOf(metrics, 'ndcg@10');
  return typeof ndcg === 'number' ? ndcg : undefined;
}

/** `key` of a stored JSON column (a version's params or metrics), when it is an object that has it. */
function fieldOf(json: unknown, key: string): unknown {
  // `in` with a string key does not narrow; a parsed JSON object is a string-keyed record, so reading is safe.
  return typeof json === 'object' && json !== null && key in json ? (json as Record<string, unknown>)[key] : undefined;
}
