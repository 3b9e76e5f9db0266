// `npm run evaluate -- --train train.csv --test test.csv --model <name> [--k 10] [--params '{"factors":64}']`
// `npm run evaluate -- --data all.csv --split temporal --model <name> [--params-file best.json] [--threads 2]`
// `npm run evaluate -- --data all.csv --model auto [--search grid|random|bayes] [--budget 120]`: exactly the
//   selection training runs (TRAIN_MODEL, TRAIN_PARAMS_FILE, TRAIN_HALF_LIFE_DAYS, TUNE_SEARCH, TUNE_BUDGET_SECONDS,
//   MODEL_NEIGHBOURS, EASE_MAX_ITEMS from config
//   unless given here), on the training part only; prints { chosen, params, metrics } with the hold-out metrics.
// Prints one JSON object on stdout; progress goes to stderr.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { isModelName, MODEL_NAMES } from '../model/evaluation.ts';
import { createExecutors } from '../model/executors.ts';
import { isSearchKind, SEARCH_KINDS } from '../model/search.ts';
import { FAMILIES } from '../model/selection.ts';
import { readPinnedParams } from '../services/training.ts';
import { loadSplitData, readParams, runAutoEvaluation, runEvaluation } from './lib/evaluation-run.ts';

const { values } = parseArgs({
  options: {
    train: { type: 'string' },
    test: { type: 'string' },
    data: { type: 'string' },
    split: { type: 'string' },
    model: { type: 'string' },
    k: { type: 'string', default: '10' },
    params: { type: 'string' },
    'params-file': { type: 'string' },
    threads: { type: 'string' },
    search: { type: 'string' },
    budget: { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
});

const config = loadConfig();
const model = values.model ?? '';
if (model !== 'auto' && !isModelName(model)) {
  console.error(`--model must be auto or one of ${MODEL_NAMES.join(', ')}`);
  process.exit(2);
}
if (values.data && (values.split ?? 'temporal') !== 'temporal') {
  console.error('--split supports only "temporal" (the protocol in datasets/README.md)');
  process.exit(2);
}
const k = Number(values.k);
if (!Number.isInteger(k) || k < 1) {
  console.error('--k must be a positive integer');
  process.exit(2);
}
const search = values.search ?? config.TUNE_SEARCH;
if (!isSearchKind(search)) {
  console.error(`--search must be one of ${SEARCH_KINDS.join(', ')}`);
  process.exit(2);
}
const budgetSeconds = values.budget ? Number(values.budget) : config.TUNE_BUDGET_SECONDS;
if (!(budgetSeconds >= 0)) {
  console.error('--budget must be a number of seconds ≥ 0');
  process.exit(2);
}

console.error(`loading ${values.data ?? `${values.train} + ${values.test}`}`);
const data = await loadSplitData(values);
console.error(`${data.train.log.user.length} training events, ${data.train.users} users, ${data.train.items} items`);
const threads = values.threads ? Number(values.threads) : os.availableParallelism();
const executors = await createExecutors(threads, (why) =>
  console.error(`worker threads unavailable, training on one thread: ${why}`),
);
try {
  if (model === 'auto') {
    // The trainer's own settings: which families, pinned params, the half-life (when set).
    const { selection: _selection, ...report } = await runAutoEvaluation(data, k, executors, {
      search,
      budgetSeconds,
      neighbours: config.MODEL_NEIGHBOURS,
      easeMaxItems: config.EASE_MAX_ITEMS,
      seed: Number(values.seed),
      families: config.TRAIN_MODEL === 'auto' ? FAMILIES : [config.TRAIN_MODEL],
      pinned: config.TRAIN_PARAMS_FILE ? await readPinnedParams(config.TRAIN_PARAMS_FILE) : undefined,
      weighting: config.TRAIN_HALF_LIFE_DAYS === undefined ? {} : { halfLifeDays: config.TRAIN_HALF_LIFE_DAYS },
    });
    console.log(JSON.stringify(report));
  } else {
    const params = readParams(values.params, values['params-file'], model);
    const report = await runEvaluation(model, params, data, k, executors);
    console.log(JSON.stringify(report));
  }
} finally {
  await executors.close();
}
