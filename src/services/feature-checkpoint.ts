import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A stopped worker's checkpoint goes by itself after this long. */
const CHECKPOINT_TTL_SECONDS = 24 * 3600;

/** What a checkpoint check found. */
export type CheckpointVerdict =
  | { kind: 'intact' }
  /** Redis came back without the writes made after `since` (its clock: the worker's). */
  | { kind: 'rewound'; since: Date };

/**
 * Detects a Redis that came back with only part of its data: with AOF and `appendfsync everysec` a crash loses
 * up to the last second or two of writes, a failover to a lagging replica more, and the layout marker (written
 * long before) survives, so a full replay is not triggered. Each worker writes a checkpoint key of its own (a
 * counter and the time) with every outbox sweep and remembers what it wrote. Redis keeps a prefix of its
 * writes (an AOF is replayed in order), so reading back an earlier counter, or nothing, means every write after
 * that checkpoint may be gone, and nothing before it is.
 */
export class FeatureCheckpoint {
  readonly #redis: Redis;
  readonly #key: string;
  #written: { seq: number; at: number } | undefined;
  #firstAt: number | undefined;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    // Not under `<prefix>:f:`: a replay clears that, and the checkpoint says nothing about a replay.
    this.#key = `${prefix}:checkpoint:${randomUUID()}`;
  }

  /**
   * Compares Redis's copy with what this worker last wrote, then writes the next checkpoint. The first call (and
   * the first after `reset`) has nothing to compare with and answers intact.
   */
  async verify(now = Date.now()): Promise<CheckpointVerdict> {
    const raw = await this.#redis.get(this.#key);
    let verdict: CheckpointVerdict = { kind: 'intact' };
    const written = this.#written;
    if (written) {
      const [seq, at] = (raw ?? '').split(':').map(Number);
      if (raw === null || seq === undefined || at === undefined || Number.isNaN(seq) || Number.isNaN(at)) {
        // Not even this worker's first checkpoint survived.
        verdict = { kind: 'rewound', since: new Date(this.#firstAt ?? written.at) };
      } else if (seq < written.seq) {
        verdict = { kind: 'rewound', since: new Date(at) };
      }
    }
    const next = { seq: (written?.seq ?? 0) + 1, at: now };
    await this.#redis.set(this.#key, `${next.seq}:${next.at}`, 'EX', CHECKPOINT_TTL_SECONDS);
    this.#written = next;
    this.#firstAt ??= now;
    return verdict;
  }

  /** Forgets what was written: after a full replay (or its request) there is nothing partial left to find. */
  reset(): void {
    this.#written = undefined;
    this.#firstAt = undefined;
  }
}
