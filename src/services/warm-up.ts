import type pg from 'pg';
import type { Db } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import { type ReplayQueue, replayPending, requestReplay, requestTraining, type TrainQueue } from '../workers/queues.ts';
import type { CatalogService } from './catalog.ts';
import { type DemoLoad, loadDemoDataIfEmpty } from './demo.ts';
import type { ModelService } from './models.ts';
import type { RebuildFallback, TrendingOrigin } from './rebuild-fallback.ts';
import type { ReplayStatus } from './replay-status.ts';

/** What a gateway is still warming up, as `/ready` reports it. */
export interface Warming {
  /** The demo data is being loaded: there is nothing to serve yet. */
  demoData?: 'loading';
  /**
   * The online features are being rebuilt: Redis lost them and no worker has noticed yet (`lost`, at most an
   * outbox sweep interval), a replay waits for a worker (`queued`), or runs (`replaying`, with progress).
   * Meanwhile lists fall back (see RebuildFallback) and `/ready` says `rebuilding`.
   */
  features?:
    | { state: 'lost' | 'queued'; trending: TrendingOrigin }
    | {
        state: 'replaying';
        trending: TrendingOrigin;
        percent?: number;
        etaSeconds?: number;
        done: number;
        total?: number;
      };
  /** No model serves yet: lists are trending and co-visitation meanwhile. */
  model?: 'queued' | 'training' | 'waiting for data';
}

interface WarmUpDeps {
  db: Db;
  pool: pg.Pool;
  catalog: CatalogService;
  models: ModelService;
  trainQueue: TrainQueue;
  replayQueue: ReplayQueue;
  replayStatus: ReplayStatus;
  fallback: RebuildFallback;
  logger: Logger;
  /** Stored form of the demo's customer ids (pseudonyms with USER_ID_KEY). */
  internalId?: (userId: string) => string;
}

/**
 * A start that serves at once: the gateway listens first and warms up behind it. Loads the demo data on an
 * empty database (then asks a feature worker for a replay and the trainer for a first model), and tells
 * `/ready` what is still warming.
 */
export class WarmUp {
  readonly #deps: WarmUpDeps;
  #loadingDemo = false;

  constructor(deps: WarmUpDeps) {
    this.#deps = deps;
  }

  /** Loads the demo data when the catalogue is empty, then asks for the replay and the first training. */
  async loadDemoData(options: { file?: string; maxRows?: number } = {}): Promise<DemoLoad> {
    const { db, pool, catalog, trainQueue, replayQueue, logger } = this.#deps;
    this.#loadingDemo = true;
    try {
      const loaded = await loadDemoDataIfEmpty(db, pool, logger, { internalId: this.#deps.internalId, ...options });
      if (loaded.events === 0) return loaded;
      await catalog.refresh(loaded.itemIds);
      await requestReplay(replayQueue, 'demo data loaded');
      if (await requestTraining(trainQueue)) logger.info('demo data loaded: the first model is queued for training');
      return loaded;
    } finally {
      this.#loadingDemo = false;
    }
  }

  /** What is still warming; `serving` is false while there is nothing to serve at all. */
  async state(): Promise<{ serving: boolean; warming: Warming }> {
    const { models, trainQueue, replayQueue, replayStatus, fallback } = this.#deps;
    const warming: Warming = {};
    if (this.#loadingDemo) warming.demoData = 'loading';
    const replay = await replayStatus.read();
    const queued = !replay && (await replayPending(replayQueue));
    // Read after the awaits, in the same turn as `fallback.rebuilding` below, so the two tell one story (the
    // fallback's check can flip between two awaits).
    const trending = fallback.origin;
    if (replay) {
      warming.features = {
        state: 'replaying',
        trending,
        percent: replay.percent,
        etaSeconds: replay.etaSeconds,
        done: replay.done,
        total: replay.total,
      };
    } else if (queued) warming.features = { state: 'queued', trending };
    else if (fallback.rebuilding) warming.features = { state: 'lost', trending };
    if (models.currentVersionId === undefined) {
      // Not 'delayed': the schedule's next run waits there; it is no training on its way now.
      const counts = await trainQueue.getJobCounts('active', 'waiting', 'prioritized');
      warming.model = counts.active ? 'training' : Object.values(counts).some(Boolean) ? 'queued' : 'waiting for data';
    }
    return { serving: !this.#loadingDemo, warming };
  }
}
