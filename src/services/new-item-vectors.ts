import type { Redis } from 'ioredis';

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

  /** The stored vectors of this version: those of `itemIds`, or all of them. */
  async read(versionId: number, itemIds?: readonly string[]): Promise<Map<string, Float32Array>> {
    const entries: [string, Buffer | null][] = itemIds
      ? itemIds.length
        ? await this.#redis
            .hmgetBuffer(this.#key(versionId), ...itemIds)
            .then((values) => values.map((value, index): [string, Buffer | null] => [itemIds[index] as string, value]))
        : []
      : Object.entries(await this.#redis.hgetallBuffer(this.#key(versionId)));
    const vectors = new Map<string, Float32Array>();
    for (const [itemId, bytes] of entries) {
      if (bytes) vectors.set(itemId, toFloat32(bytes));
    }
    return vectors;
  }
}

/** Copies out of the Buffer: its bytes may sit at an offset in a shared pool that Float32Array cannot view. */
export function toFloat32(bytes: Buffer): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}
