import { readFile } from 'node:fs/promises';
import { HnswIndex, type HnswParams } from '../ann/index.ts';
import type { Db } from '../db/client.ts';
import { databaseNow, forgetRemovedSince } from '../db/erasure.ts';
import { eventIdRange, readEventPage } from '../db/events.ts';
import {
  activateModelVersion,
  completeModelVersion,
  createModelVersion,
  failModelVersion,
  findLatestReadyModelVersion,
  findPinnedModelVersion,
} from '../db/models.ts';
import type { EventType, ModelVersion, Prisma } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { type AlsParams, trainAls } from '../model/als.ts';
import {
  evaluateRecommender,
  evenSample,
  historyMatrix,
  type ModelParams,
  type TrainingData,
  usersWithTestItems,
} from '../model/evaluation.ts';
import { createExecutors } from '../model/executors.ts';
import { type InteractionLog, selectRows } from '../model/interactions.ts';
import type { SearchKind } from '../model/search.ts';
import { FAMILIES, type Family, fitChoice, isFamily, selectModel } from '../model/selection.ts';
import { temporalSplit } from '../model/split.ts';
import { Progress } from '../progress.ts';
import type { EventWeights } from './features.ts';
import type { ShopperIds } from './shopper-ids.ts';

/** Event types in the order of the log's type column. */
const TYPE_NAMES: readonly EventType[] = ['VIEW', 'CLICK', 'ADD_TO_CART', 'REMOVE_FROM_CART', 'PURCHASE'];
const PAGE_SIZE = 10_000;
/**
 * Most shoppers the hold-out is scored on, sampled evenly. An NDCG@10 per shopper lies in [0, 1], so over
 * 5,000 its mean has a standard error of at most 0.5/sqrt(5000) ≈ 0.007, and far less at the usual means near
 * 0.1 where most shoppers score 0.
 */
const HOLDOUT_MAX_USERS = 5000;

export interface TrainingOptions {
  /** Params pinned per family (TRAIN_PARAMS_FILE): those families are fitted once with them, not searched. */
  pinned?: Partial<Record<Family, ModelParams>>;
  /** ALS overrides for one training (retrainModel's params): they pin ALS. */
  params?: Partial<AlsParams>;
  /** `auto` selects among every family and a blend; a family name trains that family only. */
  model: 'auto' | Family;
  /** How each family's params are searched, and the seconds all searches share (0: no search). */
  search: SearchKind;
  budgetSeconds: number;
  /** Neighbours per item stored for an item-to-item version. */
  neighbours: number;
  /** Most items EASE fits. */
  easeMaxItems: number;
  /** Threads for the ALS and EASE solves (worker_threads). */
  threads: number;
  /** Halves an interaction's weight every this many days before the newest event; 0 = no decay. */
  halfLifeDays?: number;
  /** Weight of each event type (the same the online features use). */
  weights: EventWeights;
  /** Knobs of the item index built for the version. */
  index?: Partial<HnswParams>;
  /**
   * While an operator's rollback pins a version, a new one serves only if its hold-out NDCG@10 beats the
   * pinned version's by this fraction (0.05: 5 % better); otherwise it is stored READY but not activated.
   */
  pinMargin: number;
  /** Whether shoppers who never stated consent are trained on (CONSENT_DEFAULT `granted`). */
  personalByDefault: boolean;
  /** Erasure subjects of shopper ids: a version stored after an erasure or withdrawal began loses that shopper. */
  ids: ShopperIds;
}

/** What a training did: the version it stored and whether it serves now, or nothing for want of data. */
export type TrainingOutcome = { version: ModelVersion; activated: boolean } | { skipped: string };

/** Whether the log holds any event a model could learn from (an item event of a type that weighs). */
export async function hasTrainingData(db: Db, weights: EventWeights): Promise<boolean> {
  const types = TYPE_NAMES.filter((type) => weights[type] > 0);
  const [row] = await db.$queryRaw<{ found: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM "Event" WHERE "itemId" IS NOT NULL AND "type"::text = ANY(${types})) AS "found"`;
  return row?.found === true;
}

/**
 * Pinned parameters per family from a JSON file as `npm run tune` writes it (`{ "als": { "params": {…} }, … }`;
 * a family's entry may also be the bare params). Fails with the path when the file is unusable.
 */
export async function readPinnedParams(path: string): Promise<Partial<Record<Family, ModelParams>>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`TRAIN_PARAMS_FILE ${path} cannot be read as JSON: ${(error as Error).message}`);
  }
  const pinned: Partial<Record<Family, ModelParams>> = {};
  if (isRecord(parsed)) {
    for (const [family, entry] of Object.entries(parsed)) {
      if (!isFamily(family) || !isRecord(entry)) continue;
      pinned[family] = isRecord(entry.params) ? entry.params : entry;
    }
  }
  if (Object.keys(pinned).length === 0)
    throw new Error(
      `TRAIN_PARAMS_FILE ${path} pins no family: expected { "${FAMILIES.join('" | "')}": { "params": {…} } }`,
    );
  return pinned;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The best params per family a stored version recorded (`params.families`), to warm-start the next search. */
function familiesOf(version: ModelVersion | null): Partial<Record<Family, ModelParams>> {
  const families = isRecord(version?.params) ? version.params.families : undefined;
  const out: Partial<Record<Family, ModelParams>> = {};
  if (isRecord(families))
    for (const [family, params] of Object.entries(families))
      if (isFamily(family) && isRecord(params)) out[family] = params;
  return out;
}

/** The hold-out NDCG@10 stored with a version (0 when it has none, so any new version beats it). */
function pinnedNdcg(version: ModelVersion): number {
  const metrics = version.metrics;
  const value = metrics && typeof metrics === 'object' && !Array.isArray(metrics) ? metrics['ndcg@10'] : undefined;
  return typeof value === 'number' ? value : 0;
}

/** Growable columns of the interaction log, so reading the event table holds numbers, not row objects. */
class LogBuilder {
  #size = 0;
  #user = new Int32Array(1024);
  #item = new Int32Array(1024);
  #time = new Float64Array(1024);
  #type = new Uint8Array(1024);
  readonly userIds: string[] = [];
  readonly itemIds: string[] = [];
  readonly #users = new Map<string, number>();
  readonly #items = new Map<string, number>();

  add(userId: string, itemId: string, at: number, type: number): void {
    if (this.#size === this.#user.length) this.#grow();
    this.#user[this.#size] = LogBuilder.#index(this.#users, this.userIds, userId);
    this.#item[this.#size] = LogBuilder.#index(this.#items, this.itemIds, itemId);
    this.#time[this.#size] = at;
    this.#type[this.#size] = type;
    this.#size++;
  }

  get size(): number {
    return this.#size;
  }

  build(): InteractionLog {
    const n = this.#size;
    return {
      user: this.#user.slice(0, n),
      item: this.#item.slice(0, n),
      time: this.#time.slice(0, n),
      type: this.#type.slice(0, n),
      value: new Float32Array(n).fill(1),
    };
  }

  static #index(map: Map<string, number>, ids: string[], id: string): number {
    let index = map.get(id);
    if (index === undefined) {
      index = ids.length;
      map.set(id, index);
      ids.push(id);
    }
    return index;
  }

  #grow(): void {
    const grow = <T extends Int32Array | Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const next = make(a.length * 2);
      next.set(a);
      return next;
    };
    this.#user = grow(this.#user, (n) => new Int32Array(n));
    this.#item = grow(this.#item, (n) => new Int32Array(n));
    this.#time = grow(this.#time, (n) => new Float64Array(n));
    this.#type = grow(this.#type, (n) => new Uint8Array(n));
  }
}

/**
 * Trains a model version from the event log: streams the events, cuts the protocol's temporal hold-out, and
 * on the training part alone tunes each family and a blend on a validation split and picks the best by NDCG@10;
 * the winner is scored on the hold-out as it serves, then every family it needs is refitted on all the data.
 * ALS is always fitted too (its vectors serve similarItems, ANN candidates and cold shoppers) with the item
 * index every gateway loads; an item-to-item winner also stores its neighbour table. The version becomes
 * current unless a pinned version keeps serving (`pinMargin`). With no interactions yet it stores nothing.
 */
export async function trainModelVersion(db: Db, logger: Logger, options: TrainingOptions): Promise<TrainingOutcome> {
  const weighting: ModelParams = {
    typeWeights: options.weights,
    ...(options.halfLifeDays === undefined ? {} : { halfLifeDays: options.halfLifeDays }),
  };
  const pinnedParams: Partial<Record<Family, ModelParams>> = { ...options.pinned };
  if (options.params && Object.keys(options.params).length > 0)
    pinnedParams.als = { ...pinnedParams.als, ...options.params };
  const started = performance.now();
  // On Postgres's clock, which stamps the erasure log: removals from now on are cut out of what this stores.
  const readFrom = await databaseNow(db);
  const builder = new LogBuilder();
  let dataFrom: Date | undefined;
  let dataTo: Date | undefined;
  const range = await eventIdRange(db);
  const reading = new Progress(logger, 'training: reading the event log', {
    total: range ? Number(range.last - range.first + 1n) : undefined,
  });
  for (let afterId = 0n; range; ) {
    const page = await readEventPage(db, afterId, PAGE_SIZE, options.personalByDefault);
    if (page.length === 0) break;
    for (const event of page) {
      // A shopper's consent decides whether their events shape the model (and so get them a vector).
      if (!event.itemId || !event.personal || options.weights[event.type] === 0) continue;
      builder.add(event.userId, event.itemId, event.occurredAt.getTime(), TYPE_NAMES.indexOf(event.type));
      if (!dataFrom || event.occurredAt < dataFrom) dataFrom = event.occurredAt;
      if (!dataTo || event.occurredAt > dataTo) dataTo = event.occurredAt;
    }
    afterId = page[page.length - 1]!.id;
    reading.update(Number(afterId - range.first + 1n));
  }
  if (builder.size === 0) return { skipped: 'no item interactions to train on yet' };
  reading.finish({ interactions: builder.size });
  const read = performance.now();

  const previous = familiesOf(await findLatestReadyModelVersion(db));
  const version = await createModelVersion(db, options.model, {
    search: options.search,
    budgetSeconds: options.budgetSeconds,
    ...weighting,
  } as Prisma.InputJsonObject);
  const executors = await createExecutors(options.threads, (reason) =>
    logger.warn({ reason }, 'training on one thread: worker threads could not start'),
  );
  // The phases after reading, for the log: which one runs and how far along the whole training is.
  const phase = (name: string, step: number) =>
    logger.info(
      { version: version.id, phase: name, step, of: 5 },
      `training version ${version.id}: ${name} (${step}/5)`,
    );
  try {
    const data: TrainingData = {
      log: builder.build(),
      users: builder.userIds.length,
      items: builder.itemIds.length,
      typeNames: TYPE_NAMES,
    };
    const split = temporalSplit(data.log, data.users, data.items);
    const trainPart: TrainingData = { ...data, log: selectRows(data.log, split.trainRows) };
    phase(`model selection (${options.search} search, ${options.budgetSeconds} s budget)`, 1);
    // Only the training part goes in: the hold-out below is never read while tuning.
    const selection = await selectModel(trainPart, executors, {
      search: options.search,
      budgetSeconds: options.budgetSeconds,
      families: options.model === 'auto' ? FAMILIES : [options.model],
      warmStart: previous,
      pinned: pinnedParams,
      weighting,
      easeMaxItems: options.easeMaxItems,
      neighbours: options.neighbours,
      log: (message) => logger.info({ version: version.id }, `model selection: ${message}`),
    });
    const selected = performance.now();

    phase(`hold-out fit and evaluation of ${selection.chosen}`, 2);
    const holdout = await fitChoice(selection.chosen, selection.params, trainPart, executors, {
      neighbours: options.neighbours,
      weighting,
    });
    // A sample of the hold-out's shoppers (metrics.users says how many): scoring one ranks the whole catalogue,
    // and all 100,000 shoppers of a 100,000-item shop kept the trainer busy for more than a quarter of an hour.
    const holdoutUsers = evenSample(usersWithTestItems(split.testIndptr), HOLDOUT_MAX_USERS);
    const summary = evaluateRecommender(
      holdout.recommender,
      holdout.history,
      split.testIndptr,
      split.testItems,
      10,
      holdout.history.cols,
      holdoutUsers,
    );
    const evaluated = performance.now();

    phase('fit on all data', 3);
    const alsParams = selection.params.families.als ?? pinnedParams.als ?? previous.als ?? {};
    const model = await trainAls(historyMatrix(data, { ...weighting, ...alsParams }), alsParams, executors.als);
    const serving =
      selection.chosen === 'als'
        ? undefined
        : await fitChoice(selection.chosen, selection.params, data, executors, {
            neighbours: options.neighbours,
            weighting,
            als: model,
          });
    const trained = performance.now();
    phase('item index build', 4);
    const index = HnswIndex.build({
      space: 'ip',
      dim: model.factors,
      ids: builder.itemIds,
      vectors: model.itemFactors,
      params: options.index,
    });
    const itemIndex = await index.serialize();
    const indexed = performance.now();

    const seconds = (from: number, to: number) => Math.round(to - from) / 1000;
    phase('store', 5);
    const pinned = await findPinnedModelVersion(db);
    const activated = !pinned || summary.ndcg >= pinnedNdcg(pinned) * (1 + options.pinMargin);
    let stored = await completeModelVersion(
      db,
      version.id,
      {
        dataFrom,
        dataTo,
        events: builder.size,
        users: data.users,
        items: data.items,
        algorithm: selection.chosen,
        params: {
          // The ALS fit's fold-in params stay at the top level, where serving reads them (shopper-vectors.ts).
          factors: model.factors,
          lambda: model.lambda,
          alpha: model.alpha,
          confidence: model.confidence,
          epsilon: model.epsilon,
          chosen: selection.chosen,
          search: options.search,
          budgetSeconds: options.budgetSeconds,
          families: selection.params.families,
          ...(selection.params.blend ? { blend: selection.params.blend } : {}),
          // Read by serving (models.ts): how an item-to-item version weighs a shopper's history by recency.
          ...(selection.params.historyHalfLifeDays
            ? { historyHalfLifeDays: selection.params.historyHalfLifeDays }
            : {}),
          ...weighting,
        } as Prisma.InputJsonObject,
        metrics: {
          'precision@10': summary.precision,
          'recall@10': summary.recall,
          'ndcg@10': summary.ndcg,
          'map@10': summary.map,
          coverage: summary.coverage,
          popularShare: summary.popularShare,
          users: summary.users,
          'validationNdcg@10': selection.validation.ndcg,
          validation: Object.fromEntries(
            selection.outcomes.map((o) => [
              o.family,
              {
                'ndcg@10': o.validation.ndcg,
                coverage: o.validation.coverage,
                popularShare: o.validation.popularShare,
              },
            ]),
          ),
        },
        trials: selection.trials.map((t) => ({ ...t })) as Prisma.InputJsonArray,
        timings: {
          readSeconds: seconds(started, read),
          tuneSeconds: seconds(read, selected),
          holdoutSeconds: seconds(selected, evaluated),
          trainSeconds: seconds(evaluated, trained),
          indexSeconds: seconds(trained, indexed),
        },
      },
      {
        factors: model.factors,
        itemIds: builder.itemIds,
        itemFactors: model.itemFactors,
        userIds: builder.userIds,
        userFactors: model.userFactors,
        itemIndex,
        ...(serving?.neighbours ? { neighbours: serving.neighbours } : {}),
      },
      false,
    );
    // A shopper erased (or withdrawn) while this trained is in its vectors: once stored, the version is cut as
    // the erasure cut the others (under the erasure lock), and only then may any gateway load it.
    const forgotten = await forgetRemovedSince(db, stored.id, readFrom, (userId) => options.ids.subject(userId));
    if (forgotten)
      logger.info({ version: stored.id, forgotten }, 'cut shoppers erased during training out of the version');
    if (activated) stored = await activateModelVersion(db, stored.id);
    logger.info(
      { version: stored.id, events: builder.size, metrics: summary, activated, pinned: pinned?.id },
      activated
        ? 'trained a model version; it serves now'
        : `trained a model version; pinned ${pinned?.id} keeps serving`,
    );
    return { version: stored, activated };
  } catch (error) {
    await failModelVersion(db, version.id, (error as Error).message);
    throw error;
  } finally {
    await executors.close();
  }
}
