import type { JobType } from 'bullmq';
import type { Db } from '../db/client.ts';
import { completeErasureLog, eraseShopperRows, findLatestErasure } from '../db/erasure.ts';
import { UnavailableError } from '../errors.ts';
import type { ErasureKind } from '../generated/prisma/enums.ts';
import type { Logger } from '../logger.ts';
import type { PubSub } from '../realtime/pubsub.ts';
import type { EventJob, EventsQueue } from '../workers/queues.ts';
import type { FeatureStore } from './features.ts';
import type { ShopperIds } from './shopper-ids.ts';

/** What an erasure removed, store by store, and when it took effect. */
export interface ErasureReceipt {
  erasedAt: Date;
  /** Events deleted from the event log (attribution included: it is a field of the event). */
  events: number;
  /** Shopper rows deleted (0 or 1). */
  profiles: number;
  /** Stored model versions whose user vectors held the shopper (their row was cut out). */
  modelVectors: number;
  /** Redis keys of theirs deleted (online features, history, purchases, folded-in vectors). */
  onlineKeys: number;
  /** Their events taken out of jobs still waiting in the events queue. */
  queuedEvents: number;
}

/** Job states whose jobs still carry their data and are not held by a worker (a paused queue's jobs wait too). */
const WAITING_STATES: JobType[] = ['waiting', 'delayed', 'prioritized', 'failed'];
/** Queued jobs read per page while purging. */
const PAGE = 500;
/** The most queued jobs one erasure looks through (a backlog beyond that is left to the tombstone). */
const MAX_SCANNED = 100_000;

/**
 * Removes a shopper's personal data from every store, on every process: Postgres (events, shopper row, the
 * user vectors of stored models), Redis (their keys, plus a tombstone that makes workers drop events of theirs
 * received before the erasure), jobs waiting in the events queue and entries of the live stream, and, through pub/sub, the loaded models of
 * every gateway. Aggregates that cannot single anyone out (trending, co-visitation counts) stay.
 */
export class ErasureService {
  readonly #db: Db;
  readonly #features: FeatureStore;
  readonly #queue: EventsQueue;
  readonly #purgeLive: (userId: string) => Promise<number>;
  readonly #pubsub: PubSub;
  readonly #ids: ShopperIds;
  readonly #logger: Logger;

  constructor(deps: {
    db: Db;
    features: FeatureStore;
    queue: EventsQueue;
    /** Takes the shopper's events out of the live stream (see live-events.ts); how many. */
    purgeLive: (userId: string) => Promise<number>;
    pubsub: PubSub;
    ids: ShopperIds;
    logger: Logger;
  }) {
    this.#purgeLive = deps.purgeLive;
    this.#db = deps.db;
    this.#features = deps.features;
    this.#queue = deps.queue;
    this.#pubsub = deps.pubsub;
    this.#ids = deps.ids;
    this.#logger = deps.logger;
  }

  /** Erases everything of this (internal) shopper id; an id never seen gives a receipt of zeros. */
  erase(userId: string): Promise<ErasureReceipt> {
    return this.remove(userId, 'ERASURE');
  }

  /**
   * Removes the shopper's data: for an erasure everything, the event log included; for a withdrawal of consent
   * what was built from the log (online profile and history, vectors), leaving their events to the anonymous
   * aggregates and their shopper row to hold the withdrawal. Retrying after a failure is safe: every step
   * deletes what is left.
   */
  async remove(userId: string, kind: ErasureKind): Promise<ErasureReceipt> {
    const subject = this.#ids.subject(userId);
    let rows: Awaited<ReturnType<typeof eraseShopperRows>>;
    try {
      rows = await eraseShopperRows(this.#db, userId, subject, { kind });
    } catch (error) {
      throw new UnavailableError('postgres', 'the event store', error);
    }
    let onlineKeys: number;
    let queuedEvents: number;
    try {
      // After Postgres: a worker that restores the shopper from the log from now on finds nothing, and the
      // tombstone stops any event it already holds.
      // A withdrawal leaves queued events to count toward trending: the no-consent marker keeps them anonymous.
      onlineKeys =
        kind === 'ERASURE'
          ? await this.#features.eraseShopper(userId, rows.erasedAt)
          : await this.#features.withdrawShopper(userId);
      queuedEvents = kind === 'ERASURE' ? (await this.#purgeQueued(userId)) + (await this.#purgeLive(userId)) : 0;
      await this.#pubsub.publishShopperForgotten({ userId });
    } catch (error) {
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
    await completeErasureLog(this.#db, rows.logId, { onlineKeys, queuedEvents }).catch((error: unknown) =>
      this.#logger.warn({ err: error }, 'recording an erasure’s Redis counts failed; the erasure itself is done'),
    );
    this.#logger.info({ kind, events: rows.events, onlineKeys, queuedEvents }, 'shopper data removed');
    return {
      erasedAt: rows.erasedAt,
      events: rows.events,
      profiles: rows.profiles,
      modelVectors: rows.modelVectors,
      onlineKeys,
      queuedEvents,
    };
  }

  /** The latest erasure of this shopper id, or null when none ran. */
  async lastErasure(userId: string): Promise<ErasureReceipt | null> {
    const found = await findLatestErasure(this.#db, this.#ids.subject(userId));
    return (
      found && {
        erasedAt: found.erasedAt,
        events: found.events,
        profiles: found.profiles,
        modelVectors: found.modelVectors,
        onlineKeys: found.onlineKeys,
        queuedEvents: found.queuedEvents,
      }
    );
  }

  /**
   * Takes the shopper's events out of jobs that wait in the events queue (their data names the shopper), so
   * no copy of them stays in Redis. A job a worker holds right now cannot be changed; the tombstone makes that
   * worker drop those events, and the job is deleted when it completes.
   */
  async #purgeQueued(userId: string): Promise<number> {
    const carrying: Awaited<ReturnType<EventsQueue['getJobs']>> = [];
    for (let start = 0; start < MAX_SCANNED; start += PAGE) {
      const jobs = await this.#queue.getJobs(WAITING_STATES, start, start + PAGE - 1, true);
      carrying.push(...jobs.filter((job) => job?.data.events?.some((event) => event.userId === userId)));
      if (jobs.length < PAGE) break;
    }
    let purged = 0;
    for (const job of carrying) {
      const events = job.data.events ?? [];
      const kept = events.filter((event) => event.userId !== userId);
      const gone = new Set(events.filter((event) => event.userId === userId).map(({ eventId }) => eventId));
      const data: EventJob = { eventIds: job.data.eventIds.filter((id) => !gone.has(id)), events: kept };
      try {
        if (kept.length === 0) await job.remove();
        else await job.updateData(data);
        purged += gone.size;
      } catch (error) {
        // Taken by a worker meanwhile: the tombstone covers it.
        this.#logger.debug({ err: error, jobId: job.id }, 'a queued job was taken before it could be purged');
      }
    }
    return purged;
  }
}
