import type { QueueEvents } from 'bullmq';
import type { Db } from '../db/client.ts';
import { DomainError, ErrorCode, InvalidInputError } from '../errors.ts';
import type { ModelVersion } from '../generated/prisma/client.ts';
import type { TrainQueue } from '../workers/queues.ts';
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

/** How long `retrainModel(wait: true)` waits for the worker before answering with the queued job only. */
const WAIT_FOR_TRAINING_MS = 120_000;

/** Asks the training worker for a new model version, and lists the versions trained so far. */
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

  /** Queues a training; with `wait`, resolves with the new version once this gateway serves it. */
  async retrain(options: {
    wait: boolean;
    params?: unknown;
  }): Promise<{ jobId: string; version: ModelVersion | null }> {
    const job = await this.#queue.add('train', { params: checkTrainingParams(options.params) });
    if (!options.wait) return { jobId: job.id ?? '', version: null };
    let versionId: number;
    try {
      versionId = await job.waitUntilFinished(this.#events, WAIT_FOR_TRAINING_MS);
    } catch (error) {
      throw new DomainError(
        ErrorCode.UNAVAILABLE,
        `training job ${job.id} did not finish: ${(error as Error).message}`,
      );
    }
    // The announcement reaches this gateway too, but answer only once it serves the new version here.
    await this.#models.load(versionId);
    return { jobId: job.id ?? '', version: await this.#db.modelVersion.findUnique({ where: { id: versionId } }) };
  }
}
