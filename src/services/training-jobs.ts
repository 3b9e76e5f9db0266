import type { Job, QueueEvents } from 'bullmq';
import type { Db } from '../db/client.ts';
import { findCurrentModelVersion, unpinModelVersion } from '../db/models.ts';
import { DomainError, ErrorCode, InvalidInputError } from '../errors.ts';
import type { ModelVersion } from '../generated/prisma/client.ts';
import type { TrainJob, TrainQueue, TrainResult } from '../workers/queues.ts';
import type { ModelService } from './models.ts';

/** ALS parameters an admin may override per training, with their sane ranges. */
const TUNABLE = {
  factors: [2, 512],
  lambda: [0, 1000],
  alpha: [0, 10_000],
  iterations: [1, 100],
  cgSteps: [0, 20],
} as const satisfies Record<string, readonly [number, number]>;

function checkTrainingParams(params: unknown): Record<string, number> | undefined {
  if (params === undefined || params === null) return undefined;
  if (typeof params !== 'object' || Array.isArray(params))
    throw new InvalidInputError('params', 'type', 'must be a JSON object');
  const checked: Record<string, number> = {};
  for (const [key, value] of Object.entries(params)) {
    const range = TUNABLE[key as keyof typeof TUNABLE];
    if (!range)
      throw new InvalidInputError(`params.${key}`, 'known', `is not tunable; use ${Object.keys(TUNABLE).join(', ')}`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < range[0] || value > range[1]) {
      throw new InvalidInputError(`params.${key}`, 'range', `must be a number from ${range[0]} to ${range[1]}`);
    }
    checked[key] = value;
  }
  return checked;
}

/** Longest `retrainModel(wait: true)` may hold a request; past it the answer says the job still runs. */
const MAX_WAIT_SECONDS = 3600;

/** Where a training job stands. */
export const TrainingStatus = {
  QUEUED: 'QUEUED',
  RUNNING: 'RUNNING',
  /** A version was stored (it serves unless a pinned version keeps serving: see `version.current`). */
  TRAINED: 'TRAINED',
  /** Nothing to learn from yet: no version was stored. */
  SKIPPED: 'SKIPPED',
  FAILED: 'FAILED',
} as const;
export type TrainingStatus = (typeof TrainingStatus)[keyof typeof TrainingStatus];

export interface TrainingJobState {
  jobId: string;
  status: TrainingStatus;
  /** The stored version, once TRAINED. */
  version: ModelVersion | null;
  /** Why it was SKIPPED or FAILED. */
  message: string | null;
}

/** Asks the trainer for a new model version, tells how a training job stands, and ends a rollback's pin. */
export class TrainingService {
  readonly #db: Db;
  readonly #queue: TrainQueue;
  readonly #events: QueueEvents;
  readonly #models: ModelService;

  constructor(deps: { db: Db; queue: TrainQueue; events: QueueEvents; models: ModelService }) {
    this.#db = deps.db;
    this.#queue = deps.queue;
    this.#events = deps.events;
    this.#models = deps.models;
  }

  /**
   * Queues a training. With `wait`, answers once it ended (and, when its version became current, once this
   * gateway serves it), or after `waitSeconds` with the job still QUEUED or RUNNING: poll `status(jobId)`.
   */
  async retrain(options: { wait: boolean; waitSeconds?: number; params?: unknown }): Promise<TrainingJobState> {
    const waitSeconds = options.waitSeconds ?? 120;
    if (!Number.isInteger(waitSeconds) || waitSeconds < 1 || waitSeconds > MAX_WAIT_SECONDS) {
      throw new InvalidInputError('waitSeconds', 'range', `must be a whole number from 1 to ${MAX_WAIT_SECONDS}`);
    }
    const job = await this.#queue.add('train', { params: checkTrainingParams(options.params) });
    if (options.wait) {
      // Rejects when the job failed or the wait ran out; either way the job's state below says which.
      await job.waitUntilFinished(this.#events, waitSeconds * 1000).catch(() => undefined);
    }
    const state = await this.#stateOf(job.id ?? '');
    // The announcement reaches this gateway too, but answer only once it serves the new version here.
    const current = await findCurrentModelVersion(this.#db);
    if (state.version && current?.id === state.version.id) await this.#models.load(current.id);
    return state;
  }

  /** How the training job stands now. */
  async status(jobId: string): Promise<TrainingJobState> {
    return this.#stateOf(jobId);
  }

  /** Ends a rollback's pin: the next training's version serves as usual. Returns the version that was pinned. */
  async unpin(): Promise<ModelVersion | null> {
    return unpinModelVersion(this.#db);
  }

  async #stateOf(jobId: string): Promise<TrainingJobState> {
    const job: Job<TrainJob, TrainResult> | undefined = await this.#queue.getJob(jobId);
    if (!job) {
      throw new DomainError(ErrorCode.NOT_FOUND, `jobId: no training job ${jobId} (finished jobs are kept 100 deep)`, {
        field: 'jobId',
        rule: 'exists',
      });
    }
    const state = await job.getState();
    const base = { jobId, version: null, message: null };
    if (state === 'failed') return { ...base, status: TrainingStatus.FAILED, message: job.failedReason ?? null };
    if (state === 'active') return { ...base, status: TrainingStatus.RUNNING };
    if (state !== 'completed') return { ...base, status: TrainingStatus.QUEUED };
    const result = job.returnvalue;
    if (result.outcome === 'SKIPPED') return { ...base, status: TrainingStatus.SKIPPED, message: result.reason };
    const version = await this.#db.modelVersion.findUnique({ where: { id: result.versionId } });
    return { ...base, status: TrainingStatus.TRAINED, version };
  }
}
