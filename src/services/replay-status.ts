import type { Redis } from 'ioredis';
import type { ProgressReport } from '../progress.ts';

/** A running replay's last progress line disappears this long after it stopped reporting (a dead worker). */
const STATUS_TTL_SECONDS = 60;

/**
 * Where a replay of the event log into Redis stands, shared through Redis so that every gateway's `/ready`
 * can say so while a feature worker replays. One key per deployment, with a TTL.
 */
export class ReplayStatus {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}:status:replay`;
  }

  async report(report: ProgressReport): Promise<void> {
    await this.#redis.set(this.#key, JSON.stringify(report), 'EX', STATUS_TTL_SECONDS);
  }

  async clear(): Promise<void> {
    await this.#redis.del(this.#key);
  }

  /** The last progress of a running replay, or undefined when none runs. */
  async read(): Promise<ProgressReport | undefined> {
    const raw = await this.#redis.get(this.#key);
    return raw ? (JSON.parse(raw) as ProgressReport) : undefined;
  }
}
