import type { Redis } from 'ioredis';
import type { Db } from '../db/client.ts';
import { loadModelVectors } from '../db/models.ts';
import { addGram, type ConfidenceParams } from '../model/als-kernel.ts';
import { type FoldInModel, foldIn, makeFoldInScratch } from '../model/fold-in.ts';
import type { EventWeights } from './features.ts';

/** The most recent interactions of a shopper a fold-in reads. */
const HISTORY_LIMIT = 500;
// A folded vector outlives a retrain only by version (the key names it); this bounds idle shoppers' keys.
const VECTOR_TTL_SECONDS = 30 * 24 * 3600;

interface FoldInState {
  versionId: number;
  model: FoldInModel;
  items: Map<string, number>;
}

/**
 * Shopper vectors kept fresh between trainings: after each processed event the worker folds the shopper's
 * recent interactions into a vector against the current model's item vectors (the ALS user step for that
 * one shopper) and stores it in Redis under the model version; the gateway ranks with it, so a shopper's
 * next list reflects what they just did, also when the model was trained before they first came.
 */
export class ShopperVectors {
  readonly #db: Db;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #weights: EventWeights;
  #state: FoldInState | undefined;

  constructor(deps: { db: Db; redis: Redis; prefix: string; weights: EventWeights }) {
    this.#db = deps.db;
    this.#redis = deps.redis;
    this.#prefix = `${deps.prefix}:f`;
    this.#weights = deps.weights;
  }

  #key(userId: string, versionId: number): string {
    return `${this.#prefix}:u:${userId}:vec:${versionId}`;
  }

  /** Folds in against this model version from now on (worker side). */
  async useVersion(versionId: number): Promise<void> {
    if (this.#state?.versionId === versionId) return;
    const [version, vectors] = await Promise.all([
      this.#db.modelVersion.findUnique({ where: { id: versionId } }),
      loadModelVectors(this.#db, versionId),
    ]);
    if (!version || !vectors) return;
    const params = version.params as unknown as { lambda: number } & ConfidenceParams;
    const itemGram = new Float64Array(vectors.factors * vectors.factors);
    addGram(vectors.itemFactors, vectors.factors, 0, vectors.itemIds.length, itemGram);
    this.#state = {
      versionId,
      items: new Map(vectors.itemIds.map((id, index) => [id, index])),
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
  }

  /** Recomputes and stores the vectors of these shoppers (worker side); a no-op before the first model. */
  async refresh(userIds: readonly string[]): Promise<void> {
    const state = this.#state;
    if (!state || userIds.length === 0) return;
    const rows = await this.#db.$queryRawUnsafe<{ userId: string; itemId: string; type: keyof EventWeights }[]>(
      `SELECT "userId", "itemId", "type" FROM (
         SELECT "userId", "itemId", "type",
                row_number() OVER (PARTITION BY "userId" ORDER BY "occurredAt" DESC) AS recency
         FROM "Event" WHERE "userId" = ANY($1::text[]) AND "itemId" IS NOT NULL
       ) recent WHERE recency <= ${HISTORY_LIMIT}`,
      userIds,
    );
    const histories = new Map<string, Map<number, number>>();
    for (const row of rows) {
      const item = state.items.get(row.itemId);
      const weight = this.#weights[row.type];
      if (item === undefined || weight === 0) continue;
      const history = histories.get(row.userId) ?? new Map<number, number>();
      history.set(item, (history.get(item) ?? 0) + weight);
      histories.set(row.userId, history);
    }
    const scratch = makeFoldInScratch(state.model.factors);
    const pipeline = this.#redis.pipeline();
    for (const [userId, history] of histories) {
      const vector = foldIn(state.model, [...history.keys()], [...history.values()], undefined, scratch);
      pipeline.set(this.#key(userId, state.versionId), Buffer.from(vector.buffer), 'EX', VECTOR_TTL_SECONDS);
    }
    if (histories.size) await pipeline.exec();
  }

  /** The shopper's folded-in vector for this model version, if the worker has made one (gateway side). */
  async get(userId: string, versionId: number): Promise<Float32Array | undefined> {
    const bytes = await this.#redis.getBuffer(this.#key(userId, versionId));
    return bytes
      ? new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
      : undefined;
  }
}
