// What the evaluate and tune commands and the quality benchmark share: load data into a protocol split, fit a
// model by name, and report the metrics in the agreed JSON shape.
import { readFileSync } from 'node:fs';
import {
  type Executors,
  evaluateRecommender,
  fitModel,
  heldOutFromLog,
  historyMatrix,
  type ModelName,
  type ModelParams,
  type TrainingData,
} from '../../model/evaluation.ts';
import { type InteractionLog, selectRows } from '../../model/interactions.ts';
import type { RankingSummary } from '../../model/metrics.ts';
import type { SearchKind } from '../../model/search.ts';
import {
  type Choice,
  type ChoiceParams,
  type Family,
  type FamilyOutcome,
  fitChoice,
  type Selection,
  selectModel,
} from '../../model/selection.ts';
import { temporalSplit } from '../../model/split.ts';
import { IdTables, readInteractionsFile } from './interactions-csv.ts';

/** Training data plus each user's held-out items. */
export interface SplitData {
  readonly train: TrainingData;
  readonly testIndptr: Int32Array;
  readonly testItems: Int32Array;
}

/** The protocol's temporal split of one log. */
export function splitLog(log: InteractionLog, users: number, items: number, typeNames: readonly string[]): SplitData {
  const split = temporalSplit(log, users, items);
  return {
    train: { log: selectRows(log, split.trainRows), users, items, typeNames },
    testIndptr: split.testIndptr,
    testItems: split.testItems,
  };
}

/** Loads `--data` (and splits it) or `--train` + `--test`. */
export async function loadSplitData(args: { data?: string; train?: string; test?: string }): Promise<SplitData> {
  const ids = new IdTables();
  if (args.data) {
    const log = await readInteractionsFile(args.data, ids);
    return splitLog(log, ids.users.size, ids.items.size, ids.typeNames());
  }
  if (!args.train || !args.test) throw new Error('give --data FILE --split temporal, or --train FILE --test FILE');
  const trainLog = await readInteractionsFile(args.train, ids);
  const testLog = await readInteractionsFile(args.test, ids);
  const train: TrainingData = {
    log: trainLog,
    users: ids.users.size,
    items: ids.items.size,
    typeNames: ids.typeNames(),
  };
  const history = historyMatrix(train, {});
  return { train, ...heldOutFromLog(testLog, ids.users.size, history) };
}

/**
 * Reads `--params` JSON and/or `--params-file`; --params wins. The file may be a tune output `{ model, params }`,
 * a per-model map `{ als: { params }, ease: { params } }` (as TRAIN_PARAMS_FILE pins them), or a bare params object.
 */
export function readParams(inline?: string, file?: string, model?: string): ModelParams {
  let fromFile: ModelParams = {};
  if (file) {
    let parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const entry = model ? parsed[model] : undefined;
    if (typeof entry === 'object' && entry !== null) parsed = entry as Record<string, unknown>;
    fromFile = (typeof parsed.params === 'object' && parsed.params !== null ? parsed.params : parsed) as ModelParams;
  }
  const fromInline = inline ? (JSON.parse(inline) as ModelParams) : {};
  return { ...fromFile, ...fromInline };
}

/** The one JSON object `npm run evaluate` prints. */
export interface EvaluationReport {
  model: string;
  params: ModelParams;
  metrics: Record<string, number>;
  users: number;
  trainSeconds: number;
  peakRssMb: number;
}

export function peakRssMb(): number {
  // resourceUsage().maxRSS is in kilobytes and covers the whole process lifetime.
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** Fits `model` on the split's training part and scores it on the held-out items. */
export async function runEvaluation(
  model: ModelName,
  params: ModelParams,
  data: SplitData,
  k: number,
  executors: Executors,
): Promise<EvaluationReport> {
  const started = performance.now();
  console.error(`fitting ${model} on ${data.train.log.user.length} training events…`);
  const { recommender, history } = await fitModel(model, params, data.train, executors);
  const trainSeconds = (performance.now() - started) / 1000;
  console.error(
    `fitted in ${trainSeconds.toFixed(1)} s; ranking the catalogue for ${data.testIndptr.length - 1} users…`,
  );
  const summary = evaluateRecommender(recommender, history, data.testIndptr, data.testItems, k);
  console.error(`evaluated in ${((performance.now() - started) / 1000 - trainSeconds).toFixed(1)} s`);
  return {
    model,
    params,
    metrics: metricsOf(summary, k),
    users: summary.users,
    trainSeconds: Math.round(trainSeconds * 1000) / 1000,
    peakRssMb: peakRssMb(),
  };
}

/** The metrics object every report and stored version carries. */
export function metricsOf(summary: RankingSummary, k: number): Record<string, number> {
  return {
    [`precision@${k}`]: summary.precision,
    [`recall@${k}`]: summary.recall,
    [`ndcg@${k}`]: summary.ndcg,
    [`map@${k}`]: summary.map,
    coverage: summary.coverage,
    popularShare: summary.popularShare,
  };
}

/** What `evaluate --model auto` prints. */
export interface AutoReport {
  chosen: Choice;
  params: ChoiceParams;
  /** Hold-out metrics of the chosen model, scored as it serves. */
  metrics: Record<string, number>;
  users: number;
  /** Each family (and the blend) on the validation split cut from the training part. */
  validation: { family: Choice; params: FamilyOutcome['params']; metrics: Record<string, number>; seconds: number }[];
  search: SearchKind;
  budgetSeconds: number;
  tuningSeconds: number;
  trials: number;
  fitSeconds: number;
  peakRssMb: number;
}

/** Options of the selection an auto evaluation runs (training passes the same ones from its config). */
export interface AutoOptions {
  search: SearchKind;
  budgetSeconds: number;
  neighbours: number;
  easeMaxItems: number;
  seed?: number;
  families?: readonly Family[];
  /** Families whose params are pinned (TRAIN_PARAMS_FILE). */
  pinned?: Partial<Record<Family, ModelParams>>;
  /** Weighting every family's history is built with (TRAIN_HALF_LIFE_DAYS). */
  weighting?: ModelParams;
}

/** Scores a fitted choice on the split's hold-out. */
export async function holdoutOf(
  choice: Choice,
  params: ChoiceParams,
  data: SplitData,
  k: number,
  executors: Executors,
  neighbours: number,
  weighting: ModelParams = {},
): Promise<{ summary: RankingSummary; seconds: number }> {
  const started = performance.now();
  const fitted = await fitChoice(choice, params, data.train, executors, { neighbours, weighting });
  const seconds = (performance.now() - started) / 1000;
  const summary = evaluateRecommender(fitted.recommender, fitted.history, data.testIndptr, data.testItems, k);
  return { summary, seconds };
}

/**
 * Exactly the selection training runs, on the split's training part (the hold-out is not passed in), then the
 * winner fitted on the whole training part and scored on the hold-out.
 */
export async function runAutoEvaluation(
  data: SplitData,
  k: number,
  executors: Executors,
  options: AutoOptions,
): Promise<AutoReport & { selection: Selection }> {
  const selection = await selectModel(data.train, executors, {
    search: options.search,
    budgetSeconds: options.budgetSeconds,
    seed: options.seed,
    k,
    families: options.families,
    easeMaxItems: options.easeMaxItems,
    neighbours: options.neighbours,
    pinned: options.pinned,
    weighting: options.weighting,
    log: (message) => console.error(message),
  });
  console.error(`chosen: ${selection.chosen}; fitting it on the whole training part…`);
  const { summary, seconds } = await holdoutOf(
    selection.chosen,
    selection.params,
    data,
    k,
    executors,
    options.neighbours,
    options.weighting,
  );
  return {
    chosen: selection.chosen,
    params: selection.params,
    metrics: metricsOf(summary, k),
    users: summary.users,
    validation: selection.outcomes.map((o) => ({
      family: o.family,
      params: o.params,
      metrics: metricsOf(o.validation, k),
      seconds: Math.round(o.seconds * 10) / 10,
    })),
    search: options.search,
    budgetSeconds: options.budgetSeconds,
    tuningSeconds: Math.round(selection.seconds * 10) / 10,
    trials: selection.trials.length,
    fitSeconds: Math.round(seconds * 10) / 10,
    peakRssMb: peakRssMb(),
    selection,
  };
}
