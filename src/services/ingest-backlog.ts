import type pg from 'pg';
import type { Logger } from '../logger.ts';

/** How often a gateway reads the backlog; refusals start and stop within this long of crossing the bound. */
const POLL_MS = 500;

/**
 * Back-pressure on ingestion: how many stored events no worker has processed yet, read from the log itself
 * (whatever path they took to the workers, or none), counted up to the bound only so the read stays cheap.
 * Past `maxEvents` the gateway refuses new events at once (`OVERLOADED`) until the workers catch up: a
 * client that retries later loses nothing, while accepting without bound would make every list stale by
 * the whole backlog. A failed read keeps the last answer (Postgres trouble is answered by the insert).
 */
export class IngestBacklog {
  readonly #pool: pg.Pool;
  readonly #maxEvents: number;
  readonly #logger: Logger;
  #over = false;
  #timer: NodeJS.Timeout | undefined;
  #reading = false;

  constructor(deps: { pool: pg.Pool; maxEvents: number; logger: Logger }) {
    this.#pool = deps.pool;
    this.#maxEvents = deps.maxEvents;
    this.#logger = deps.logger;
  }

  /** Whether new events are refused now. */
  get over(): boolean {
    return this.#over;
  }

  get maxEvents(): number {
    return this.#maxEvents;
  }

  start(): void {
    if (this.#maxEvents === 0 || this.#timer) return;
    this.#timer = setInterval(() => void this.#read(), POLL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #read(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      const { rows } = await this.#pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (SELECT 1 FROM "Event" WHERE "processedAt" IS NULL LIMIT $1) AS backlog`,
        [this.#maxEvents + 1],
      );
      const over = (rows[0]?.n ?? 0) > this.#maxEvents;
      if (over !== this.#over) {
        this.#logger.warn(
          { maxEvents: this.#maxEvents },
          over ? 'the workers are behind: refusing new events (OVERLOADED)' : 'the workers caught up: accepting events',
        );
      }
      this.#over = over;
    } catch (error) {
      this.#logger.debug({ err: error }, 'reading the ingest backlog failed');
    } finally {
      this.#reading = false;
    }
  }
}
