import { type AnnIndex, deserializeAnnIndex, VersionedIndex } from '../ann/index.ts';
import type { Db } from '../db/client.ts';
import { activateModelVersion, findCurrentModelVersion, loadModelVectors, type ModelVectors } from '../db/models.ts';
import { DomainError, ErrorCode } from '../errors.ts';
import type { ModelVersion } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { PubSub } from '../realtime/pubsub.ts';

/** A model version loaded for serving: its vectors, its index, and where each id sits in the vectors. */
interface LoadedModel {
  versionId: number;
  vectors: ModelVectors;
  users: Map<string, number>;
  items: Map<string, number>;
}

/** A scored candidate from the model. */
export interface ModelHit {
  itemId: string;
  score: number;
}

/**
 * Serves the current model version: loads it at start, follows activations announced by any replica (a new
 * training, a rollback) by loading the version in the background and swapping it in atomically, and answers
 * vector queries from it.
 */
export class ModelService {
  readonly #db: Db;
  readonly #pubsub: PubSub;
  readonly #logger: Logger;
  readonly #index = new VersionedIndex({ keep: 2 });
  readonly #loaded = new Map<string, LoadedModel>();
  readonly #listeners = new Set<(versionId: number) => void>();
  #stopListening: (() => Promise<void>) | undefined;

  constructor(deps: { db: Db; pubsub: PubSub; logger: Logger }) {
    this.#db = deps.db;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
  }

  async start(): Promise<void> {
    this.#stopListening = await this.#pubsub.onModelActivated(({ versionId }) => {
      this.load(versionId).catch((error) =>
        this.#logger.error({ err: error, versionId }, 'loading a model version failed'),
      );
    });
    const current = await findCurrentModelVersion(this.#db);
    if (current) await this.load(current.id);
  }

  async stop(): Promise<void> {
    await this.#stopListening?.();
  }

  /** Calls `listener` whenever another version starts answering here. */
  onActivated(listener: (versionId: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #activated(versionId: number): void {
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
    const vectors = await loadModelVectors(this.#db, versionId);
    if (!vectors) throw new Error(`model version ${versionId} has no artifact`);
    const model: LoadedModel = {
      versionId,
      vectors,
      users: new Map(vectors.userIds.map((id, index) => [id, index])),
      items: new Map(vectors.itemIds.map((id, index) => [id, index])),
    };
    await this.#index.load(key, async (): Promise<AnnIndex> => {
      const index = await deserializeAnnIndex(vectors.itemIndex);
      this.#loaded.set(key, model);
      return index;
    });
    // Forget vectors of versions the index no longer holds.
    for (const held of this.#loaded.keys()) if (!this.#index.versions().includes(held)) this.#loaded.delete(held);
    this.#logger.info({ versionId }, 'serving model version');
    if (this.#index.current?.version === key) this.#activated(versionId);
  }

  /** Makes an earlier READY version current on every replica. */
  async rollback(versionId: number): Promise<ModelVersion> {
    const version = await activateModelVersion(this.#db, versionId);
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
  ): { versionId: number; hits: ModelHit[] } | undefined {
    const current = this.#index.current;
    const model = current && this.#loaded.get(current.version);
    if (!current || !model) return undefined;
    // A vector folded in since training (it reflects the shopper's latest events) beats the trained one.
    let query = foldedIn?.versionId === model.versionId ? foldedIn.vector : undefined;
    const row = model.users.get(userId);
    const f = model.vectors.factors;
    if (!query && row !== undefined) query = model.vectors.userFactors.subarray(row * f, (row + 1) * f);
    if (!query) return undefined;
    const hits = current.index.search(query, k, { predicate: (id) => eligible(id) });
    return { versionId: model.versionId, hits: hits.map((hit) => ({ itemId: hit.id, score: hit.score })) };
  }

  /** Items whose vectors are closest to this item's ("shoppers who liked this also liked"). */
  similarTo(
    itemId: string,
    k: number,
    eligible: (itemId: string) => boolean,
  ): { versionId: number; hits: ModelHit[] } | undefined {
    const current = this.#index.current;
    const model = current && this.#loaded.get(current.version);
    const row = model?.items.get(itemId);
    if (!current || !model || row === undefined) return undefined;
    const f = model.vectors.factors;
    const vector = model.vectors.itemFactors.subarray(row * f, (row + 1) * f);
    // Cosine similarity: a plain inner product would favour popular items (long vectors) over similar ones.
    // The inner-product index supplies a generous candidate set, re-scored here by cosine.
    const norm = (row: number) => {
      let sum = 0;
      for (let i = row * f; i < (row + 1) * f; i++) sum += (model.vectors.itemFactors[i] as number) ** 2;
      return Math.sqrt(sum) || 1;
    };
    const queryNorm = norm(row);
    const candidates = current.index.search(vector, Math.max(50, 5 * k), {
      exclude: [itemId],
      predicate: (id) => eligible(id),
    });
    const hits = candidates
      .map((hit) => ({ id: hit.id, score: hit.score / (queryNorm * norm(model.items.get(hit.id) ?? row)) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
    return { versionId: model.versionId, hits: hits.map((hit) => ({ itemId: hit.id, score: hit.score })) };
  }
}
