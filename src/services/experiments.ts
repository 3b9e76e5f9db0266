import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Db } from '../db/client.ts';
import { type Attribution, attributeEvents } from '../db/experiments.ts';
import { DomainError, ErrorCode, InvalidInputError } from '../errors.ts';
import type { ExperimentChangeKind } from '../generated/prisma/enums.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { PubSub } from '../realtime/pubsub.ts';
import {
  bucketsOf,
  EXPERIMENT_ID,
  type ListOrigin,
  type RecommendationIds,
  VARIANT_NAME,
  variantIndex,
} from './experiment-ids.ts';
import { ImpressionLog } from './experiment-impressions.ts';
import type { ModelService } from './models.ts';
import type { PlacementService } from './placements.ts';
import { checkPlacementId, checkRules, type Rules, type RulesInput } from './rules.ts';

export const MIN_VARIANTS = 2;
export const MAX_VARIANTS = 10;
/** Experiments kept (running or stopped); every gateway holds the running ones in memory. */
export const MAX_EXPERIMENTS = 1000;
/** Distinct model versions running experiments may pin: each is a version's vectors and index in memory. */
export const MAX_PINNED_VERSIONS = 3;
/** Lock serialising experiment changes across gateways, so two cannot start overlapping experiments at once. */
const EXPERIMENT_LOCK = 0x65787065; // "expe"

/**
 * What a variant may serve instead of the default ranking: `default` (every candidate source, as without an
 * experiment) or `trending` (trending, then the catalogue: a non-personal control).
 */
export const VARIANT_STRATEGIES = ['default', 'trending'] as const;
export type VariantStrategy = (typeof VARIANT_STRATEGIES)[number];

/** A variant as an admin sends it. */
export interface VariantInput {
  name: string;
  weight: number;
  modelVersion?: number | null;
  strategy?: string | null;
  placement?: string | null;
  rules?: RulesInput | null;
}

export interface ExperimentInput {
  id: string;
  placement?: string | null;
  trafficShare?: number | null;
  variants: readonly VariantInput[];
}

/** A validated variant. Only a name and a weight: it serves what the gateway would serve anyway (A/A). */
export interface Variant {
  name: string;
  weight: number;
  /** Rank with this model version (held by every gateway while the experiment runs) instead of the current. */
  modelVersion: number | null;
  strategy: VariantStrategy | null;
  /** This placement's rules instead of the ones the request's placement has. */
  placement: string | null;
  /** These rules instead of the request's placement's (the request's own rules still apply on top). */
  rules: Rules | null;
}

export interface Experiment {
  id: string;
  /** The placement whose lists it covers; null: every list. */
  placement: string | null;
  trafficShare: number;
  variants: Variant[];
  phase: number;
  startedAt: Date;
  phaseStartedAt: Date;
  stoppedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** One entry of an experiment's history. */
export interface ExperimentChange {
  kind: ExperimentChangeKind;
  phase: number;
  trafficShare: number;
  variants: Variant[];
  at: Date;
}

/** The experiment and variant a shopper's list is served under. */
export interface Assignment {
  experiment: Experiment;
  variant: Variant;
}

/** An experiment as a serving gateway keeps it: with its salt and weights at hand. */
interface Running {
  experiment: Experiment;
  salt: string;
  weights: number[];
}

/**
 * Experiments: stored in Postgres, the running ones mirrored on every gateway (a change is announced over
 * pub/sub, as placements are). Assigns shoppers to variants by hash, signs the lists' recommendationIds,
 * logs impressions and attributes the events that carry an experiment's recommendationId.
 *
 * At most one running experiment covers a list: an experiment on a placement refuses to start beside another
 * on that placement or one on every list, and one on every list refuses to start beside any other. Layering
 * (independent salts, each experiment on its own share) would let two run at once, but every analysis would
 * then carry the other experiment's effect as noise; refusing keeps the arithmetic honest.
 */
export class ExperimentService {
  readonly #db: Db;
  readonly #pubsub: PubSub;
  readonly #logger: Logger;
  readonly #models: ModelService;
  readonly #placements: PlacementService;
  readonly #ids: RecommendationIds;
  readonly #impressions: ImpressionLog;
  readonly #pool: pg.Pool;
  /** Running experiments by the placement they cover ('' for every list); at most one each. */
  readonly #running = new Map<string, Running>();
  readonly #listeners = new Set<(placement: string | null) => void>();
  readonly #stopListening: (() => Promise<void>)[] = [];

  constructor(deps: {
    db: Db;
    /** The ingest pool: the impression log and attribution rebuilds write on it. */
    pool: pg.Pool;
    pubsub: PubSub;
    logger: Logger;
    metrics: Metrics;
    models: ModelService;
    placements: PlacementService;
    ids: RecommendationIds;
  }) {
    this.#db = deps.db;
    const pool = deps.pool;
    this.#pool = pool;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
    this.#models = deps.models;
    this.#placements = deps.placements;
    this.#ids = deps.ids;
    this.#impressions = new ImpressionLog({ pool, logger: deps.logger, metrics: deps.metrics });
  }

  async start(): Promise<void> {
    this.#stopListening.push(
      await this.#pubsub.onExperimentChanged(({ origin }) => {
        if (origin === this.#pubsub.instanceId) return;
        this.#reload().catch((error) => this.#logger.error({ err: error }, 'reloading experiments failed'));
      }),
      await this.#pubsub.onShopperForgotten(({ userId }) => this.#impressions.forget(userId)),
    );
    await this.#reload();
    this.#impressions.start();
  }

  /** Writes the impressions still buffered and stops following changes. */
  async stop(): Promise<void> {
    await Promise.all(this.#stopListening.splice(0).map((stop) => stop()));
    await this.#impressions.stop();
  }

  /** Writes the impressions buffered so far (tests and benchmarks read results right after serving). */
  flushImpressions(): Promise<void> {
    return this.#impressions.flush();
  }

  /** Calls `listener` with the placement (null: every list) whose experiment started, changed or stopped. */
  onChange(listener: (placement: string | null) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The experiment and variant a shopper's list on this placement (null: none named) is served under, or null
   * when no running experiment covers it or the shopper falls outside its traffic share. Pure arithmetic on
   * memory: one SHA-256 per list.
   */
  assign(userId: string, placement: string | null): Assignment | null {
    const running = (placement === null ? undefined : this.#running.get(placement)) ?? this.#running.get('');
    if (!running) return null;
    const draw = bucketsOf(running.salt, userId);
    if (draw.traffic >= running.experiment.trafficShare) return null;
    const variant = running.experiment.variants[variantIndex(draw.variant, running.weights)];
    return variant ? { experiment: running.experiment, variant } : null;
  }

  /** A fresh recommendationId for a list served under `assignment`. */
  recommendationId(assignment: Assignment): string {
    return this.#ids.mint(originOf(assignment));
  }

  /** Counts a served list in the impression log (per shopper and phase). */
  served(userId: string, assignment: Assignment): void {
    this.#impressions.add({ userId, servedAt: new Date(), ...originOf(assignment) });
  }

  /**
   * Rebuilds an experiment's attribution from the Event table (after a lost attribution write, or to check the
   * table): every stored event whose recommendationId verifies as this experiment's, and that has none yet, is
   * attributed as the feature worker would have (EventAttributor), processed or not. Idempotent; returns how
   * many events it attributed. Reads the whole event log: an operator's repair, not a routine.
   */
  async rebuildAttribution(id: string): Promise<number> {
    const experiment = await this.get(id);
    if (!experiment) throw notFound(id);
    const prefix = `x1.${id}.`;
    let attributed = 0;
    let cursor = 0n;
    for (;;) {
      const page = await this.#db.event.findMany({
        where: { id: { gt: cursor }, recommendationId: { startsWith: prefix } },
        select: { id: true, eventId: true, recommendationId: true },
        orderBy: { id: 'asc' },
        take: 5000,
      });
      if (page.length === 0) break;
      cursor = page.at(-1)?.id ?? cursor;
      const rows: Attribution[] = [];
      for (const event of page) {
        const read = event.recommendationId === null ? null : this.#ids.read(event.recommendationId);
        if (read?.kind === 'experiment') rows.push({ eventId: event.eventId, ...read.origin });
      }
      if (rows.length > 0) attributed += await attributeEvents(this.#pool, rows);
    }
    return attributed;
  }

  /** Every experiment, newest first. */
  async list(): Promise<Experiment[]> {
    const rows = await this.#db.experiment.findMany({ orderBy: { createdAt: 'desc' }, take: MAX_EXPERIMENTS });
    return rows.map(toExperiment);
  }

  async get(id: string): Promise<Experiment | undefined> {
    const row = await this.#db.experiment.findUnique({ where: { id } });
    return row ? toExperiment(row) : undefined;
  }

  /** The experiment's starts, changes and stops, oldest first. */
  async history(id: string): Promise<ExperimentChange[]> {
    const rows = await this.#db.experimentChange.findMany({ where: { experimentId: id }, orderBy: { id: 'asc' } });
    return rows.map((row) => ({
      kind: row.kind,
      phase: row.phase,
      trafficShare: row.trafficShare,
      variants: variantsOf(row.variants),
      at: row.at,
    }));
  }

  /** The allocation an experiment had in a phase (its weights), for the sample-ratio check. */
  async phaseVariants(id: string, phase: number): Promise<Variant[] | undefined> {
    const change = await this.#db.experimentChange.findFirst({
      where: { experimentId: id, phase, kind: { not: 'STOPPED' } },
      orderBy: { id: 'desc' },
    });
    return change ? variantsOf(change.variants) : undefined;
  }

  /**
   * Starts an experiment, or changes a running one: any change of placement, traffic share or variants starts
   * a new phase (analyses never mix phases), as does restarting a stopped one; the same input again changes
   * nothing. Every start, change and stop is kept in its history with the time.
   */
  async upsert(input: ExperimentInput): Promise<Experiment> {
    const checked = await this.#check(input);
    const stored = await this.#db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${EXPERIMENT_LOCK})`;
      const others = await tx.experiment.findMany({
        where: { stoppedAt: null, id: { not: checked.id } },
        select: { id: true, placement: true },
      });
      const clash = others.find(
        (other) => checked.placement === null || other.placement === null || other.placement === checked.placement,
      );
      if (clash) {
        throw new InvalidInputError(
          'input.placement',
          'conflict',
          `experiment ${clash.id} already runs on ${clash.placement === null ? 'every list' : `placement ${clash.placement}`}; stop it first (one running experiment per list)`,
        );
      }
      const pinned = new Set(
        [...this.#running.values()]
          .filter((running) => running.experiment.id !== checked.id)
          .flatMap((running) => running.experiment.variants.map((variant) => variant.modelVersion))
          .concat(checked.variants.map((variant) => variant.modelVersion))
          .filter((version): version is number => version !== null),
      );
      if (pinned.size > MAX_PINNED_VERSIONS) {
        throw new InvalidInputError(
          'input.variants',
          'maxItems',
          `running experiments may pin at most ${MAX_PINNED_VERSIONS} model versions together (each is held in memory)`,
        );
      }
      const existing = await tx.experiment.findUnique({ where: { id: checked.id } });
      const now = new Date();
      const variants = checked.variants.map(variantJson);
      if (!existing) {
        if ((await tx.experiment.count()) >= MAX_EXPERIMENTS) {
          throw new InvalidInputError('input.id', 'maxItems', `at most ${MAX_EXPERIMENTS} experiments are kept`);
        }
        const row = await tx.experiment.create({
          data: {
            id: checked.id,
            placement: checked.placement,
            salt: randomBytes(16).toString('base64url'),
            trafficShare: checked.trafficShare,
            variants,
            phase: 1,
            startedAt: now,
            phaseStartedAt: now,
          },
        });
        await this.#record(tx, row.id, 'STARTED', 1, checked.trafficShare, variants, now);
        return row;
      }
      const current = toExperiment(existing);
      const same =
        current.stoppedAt === null &&
        current.placement === checked.placement &&
        current.trafficShare === checked.trafficShare &&
        JSON.stringify(current.variants.map(variantJson)) === JSON.stringify(variants);
      if (same) return existing;
      const phase = existing.phase + 1;
      const row = await tx.experiment.update({
        where: { id: checked.id },
        data: {
          placement: checked.placement,
          trafficShare: checked.trafficShare,
          variants,
          phase,
          phaseStartedAt: now,
          stoppedAt: null,
          ...(current.stoppedAt !== null && { startedAt: now }),
        },
      });
      await this.#record(
        tx,
        row.id,
        current.stoppedAt === null ? 'CHANGED' : 'STARTED',
        phase,
        checked.trafficShare,
        variants,
        now,
      );
      return row;
    });
    const experiment = toExperiment(stored);
    await this.#changed(experiment.id);
    return experiment;
  }

  /** Stops an experiment: its lists are served as without it from now on; its results stay. */
  async stopExperiment(id: string): Promise<Experiment> {
    const stored = await this.#db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${EXPERIMENT_LOCK})`;
      const existing = await tx.experiment.findUnique({ where: { id } });
      if (!existing) throw notFound(id);
      if (existing.stoppedAt !== null) return existing;
      const now = new Date();
      const row = await tx.experiment.update({ where: { id }, data: { stoppedAt: now } });
      await this.#record(
        tx,
        id,
        'STOPPED',
        row.phase,
        row.trafficShare,
        variantsOf(row.variants).map(variantJson),
        now,
      );
      return row;
    });
    await this.#changed(id);
    return toExperiment(stored);
  }

  async #record(
    tx: Pick<Db, 'experimentChange'>,
    experimentId: string,
    kind: ExperimentChangeKind,
    phase: number,
    trafficShare: number,
    variants: VariantJson[],
    at: Date,
  ): Promise<void> {
    await tx.experimentChange.create({ data: { experimentId, kind, phase, trafficShare, variants, at } });
  }

  async #changed(experimentId: string): Promise<void> {
    await this.#reload();
    await this.#pubsub
      .publishExperimentChanged({ experimentId })
      .catch((error) => this.#logger.warn({ err: error }, 'announcing an experiment change failed'));
  }

  /** Reads the running experiments again, holds the model versions they pin, and tells the listeners. */
  async #reload(): Promise<void> {
    const rows = await this.#db.experiment.findMany({ where: { stoppedAt: null }, take: MAX_EXPERIMENTS });
    const before = new Map([...this.#running].map(([key, running]) => [key, running.experiment]));
    const next = new Map<string, Running>();
    for (const row of rows) {
      const experiment = toExperiment(row);
      next.set(experiment.placement ?? '', {
        experiment,
        salt: row.salt,
        weights: experiment.variants.map((variant) => variant.weight),
      });
    }
    const pinned = [...next.values()].flatMap((running) =>
      running.experiment.variants.flatMap((variant) => (variant.modelVersion === null ? [] : [variant.modelVersion])),
    );
    // Pinned versions load before the experiment serves, so a variant never ranks without its model.
    await this.#models.pin(pinned);
    this.#running.clear();
    for (const [key, running] of next) this.#running.set(key, running);
    for (const key of new Set([...before.keys(), ...next.keys()])) {
      const was = before.get(key);
      const is = next.get(key)?.experiment;
      if (was?.id === is?.id && was?.phase === is?.phase) continue;
      for (const listener of this.#listeners) listener(key === '' ? null : key);
    }
  }

  /** Validates an input: every failure is INVALID_INPUT naming the field (`input.…`) and the rule. */
  async #check(
    input: ExperimentInput,
  ): Promise<Omit<Experiment, 'phase' | 'startedAt' | 'phaseStartedAt' | 'stoppedAt' | 'createdAt' | 'updatedAt'>> {
    if (!EXPERIMENT_ID.test(input.id)) {
      throw new InvalidInputError('input.id', 'format', 'must be 1–40 letters, digits, dashes or underscores');
    }
    const placement = input.placement ?? null;
    if (placement !== null) this.#checkPlacement('input.placement', placement);
    const trafficShare = input.trafficShare ?? 1;
    if (!Number.isFinite(trafficShare) || trafficShare <= 0 || trafficShare > 1) {
      throw new InvalidInputError('input.trafficShare', 'range', `must be above 0 and at most 1 (got ${trafficShare})`);
    }
    if (input.variants.length < MIN_VARIANTS) {
      throw new InvalidInputError('input.variants', 'minItems', `needs at least ${MIN_VARIANTS} variants`);
    }
    if (input.variants.length > MAX_VARIANTS) {
      throw new InvalidInputError('input.variants', 'maxItems', `at most ${MAX_VARIANTS} variants`);
    }
    const names = new Set<string>();
    const variants: Variant[] = [];
    for (const [index, variant] of input.variants.entries()) {
      const path = `input.variants[${index}]`;
      if (!VARIANT_NAME.test(variant.name)) {
        throw new InvalidInputError(`${path}.name`, 'format', 'must be 1–32 letters, digits, dashes or underscores');
      }
      if (names.has(variant.name)) throw new InvalidInputError(`${path}.name`, 'unique', 'names another variant too');
      names.add(variant.name);
      if (!Number.isFinite(variant.weight) || variant.weight <= 0) {
        throw new InvalidInputError(`${path}.weight`, 'positive', `must be a positive number (got ${variant.weight})`);
      }
      const strategy = variant.strategy ?? null;
      if (strategy !== null && !isStrategy(strategy)) {
        throw new InvalidInputError(`${path}.strategy`, 'oneOf', `must be one of ${VARIANT_STRATEGIES.join(', ')}`);
      }
      const modelVersion = variant.modelVersion ?? null;
      if (modelVersion !== null) await this.#checkModelVersion(`${path}.modelVersion`, modelVersion);
      const variantPlacement = variant.placement ?? null;
      if (variantPlacement !== null) this.#checkPlacement(`${path}.placement`, variantPlacement);
      if (variantPlacement !== null && variant.rules) {
        throw new InvalidInputError(`${path}.rules`, 'exclusive', 'give a placement or rules, not both');
      }
      const rules = variant.rules ? checkRules(`${path}.rules`, variant.rules) : null;
      variants.push({
        name: variant.name,
        weight: variant.weight,
        modelVersion,
        strategy,
        placement: variantPlacement,
        rules,
      });
    }
    const total = variants.reduce((sum, variant) => sum + variant.weight, 0);
    if (!Number.isFinite(total) || total <= 0) {
      throw new InvalidInputError('input.variants', 'sum', 'weights must add up to a finite positive number');
    }
    return { id: input.id, placement, trafficShare, variants };
  }

  #checkPlacement(field: string, id: string): void {
    checkPlacementId(field, id);
    if (!this.#placements.get(id)) throw new InvalidInputError(field, 'exists', `no placement ${id}`);
  }

  async #checkModelVersion(field: string, versionId: number): Promise<void> {
    if (!Number.isInteger(versionId) || versionId < 1) {
      throw new InvalidInputError(field, 'format', 'must be a positive integer');
    }
    const version = await this.#db.modelVersion.findUnique({
      where: { id: versionId },
      select: { status: true, artifact: { select: { versionId: true } } },
    });
    if (version?.status !== 'READY' || !version.artifact) {
      throw new InvalidInputError(field, 'exists', `no trained (READY) model version ${versionId}`);
    }
  }
}

function originOf({ experiment, variant }: Assignment): ListOrigin {
  return { experimentId: experiment.id, phase: experiment.phase, variant: variant.name };
}

function notFound(id: string): DomainError {
  return new DomainError(ErrorCode.NOT_FOUND, `id: no experiment ${id}`, { field: 'id', rule: 'exists' });
}

function isRulesInput(value: unknown): value is RulesInput {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStrategy(value: string): value is VariantStrategy {
  return (VARIANT_STRATEGIES as readonly string[]).includes(value);
}

/** A variant as stored (JSON). */
type VariantJson = {
  name: string;
  weight: number;
  modelVersion: number | null;
  strategy: VariantStrategy | null;
  placement: string | null;
  rules: Rules | null;
};

function variantJson(variant: Variant): VariantJson {
  return {
    name: variant.name,
    weight: variant.weight,
    modelVersion: variant.modelVersion,
    strategy: variant.strategy,
    placement: variant.placement,
    rules: variant.rules,
  };
}

/**
 * Variants from their stored JSON, checked again so a hand-edited row cannot break serving: entries that do
 * not read as a variant are left out.
 */
function variantsOf(json: unknown): Variant[] {
  if (!Array.isArray(json)) return [];
  const variants: Variant[] = [];
  for (const entry of json) {
    if (typeof entry !== 'object' || entry === null) continue;
    const fields: Record<string, unknown> = { ...entry };
    const { name, weight, modelVersion, strategy, placement, rules } = fields;
    if (typeof name !== 'string' || typeof weight !== 'number' || !(weight > 0)) continue;
    variants.push({
      name,
      weight,
      modelVersion: typeof modelVersion === 'number' ? modelVersion : null,
      strategy: typeof strategy === 'string' && isStrategy(strategy) ? strategy : null,
      placement: typeof placement === 'string' ? placement : null,
      rules: isRulesInput(rules) ? checkRules('rules', rules) : null,
    });
  }
  return variants;
}

function toExperiment(row: {
  id: string;
  placement: string | null;
  trafficShare: number;
  variants: unknown;
  phase: number;
  startedAt: Date;
  phaseStartedAt: Date;
  stoppedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}): Experiment {
  return {
    id: row.id,
    placement: row.placement,
    trafficShare: row.trafficShare,
    variants: variantsOf(row.variants),
    phase: row.phase,
    startedAt: row.startedAt,
    phaseStartedAt: row.phaseStartedAt,
    stoppedAt: row.stoppedAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
