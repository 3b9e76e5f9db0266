import type { Redis } from 'ioredis';
import { toFloat32 } from '../db/models.ts';

// Derived vectors only matter until the next retrain learns the items; this bounds forgotten versions' keys.
const TTL_SECONDS = 30 * 24 * 3600;

/**
 * Vectors the worker derived for items a model version was not trained on (from their co-visited
 * neighbours), kept in Redis per version so every gateway can add them to its index and a gateway that
 * starts later finds them too.
 */
export class NewItemVectors {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(deps: { redis: Redis; prefix: string }) {
    this.#redis = deps.redis;
    this.#prefix = `${deps.prefix}:f:itemvec`;
  }

  #key(versionId: number): string {
    return `${this.#prefix}:${versionId}`;
  }

  async save(versionId: number, vectors: ReadonlyMap<string, Float32Array>): Promise<void> {
    if (vectors.size === 0) return;
    const fields = [...vectors].flatMap(([itemId, vector]) => [itemId, Buffer.from(vector.buffer)]);
    await this.#redis
      .multi()
      .hset(this.#key(versionId), ...fields)
      .expire(this.#key(versionId), TTL_SECONDS)
      .exec();
  }

  /** The stored vectors of these items for this version (items without one are left out). */
  async read(versionId: number, itemIds: readonly string[]): Promise<Map<string, Float32Array>> {
    if (itemIds.length === 0) return new Map();
    const values = await this.#redis.hmgetBuffer(this.#key(versionId), ...itemIds);
    const vectors = new Map<string, Float32Array>();
    values.forEach((bytes, index) => {
      if (bytes) vectors.set(itemIds[index] as string, toFloat32(bytes));
    });
    return vectors;
  }

  /** Every stored vector of this version. */
  async readAll(versionId: number): Promise<Map<string, Float32Array>> {
    const entries = Object.entries(await this.#redis.hgetallBuffer(this.#key(versionId)));
    return new Map(entries.map(([itemId, bytes]) => [itemId, toFloat32(bytes)]));
  }
}
