// `npm run tune -- --data all.csv [--model auto|als|ease|itemknn] [--search grid|random|bayes] [--budget 60]
//   [--seed 1] [--threads 2] --out best.json`
// The search training runs (src/model/selection.ts), on its own: each family searched within the budget by
// successive halving over grid or random proposals, or by a TPE surrogate, scored by NDCG@10 on a validation
// split cut from the TRAINING part of the protocol's temporal split (the test part is never read). Writes
// `{ <family>: { params, "validationNdcg@10" }, … }`, which TRAIN_PARAMS_FILE accepts to pin those params.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { createExecutors } from '../model/executors.ts';
import { isSearchKind, SEARCH_KINDS } from '../model/search.ts';
import { FAMILIES, isFamily, selectModel } from '../model/selection.ts';
import { peakRssMb, splitLog } from './lib/evaluation-run.ts';
import { IdTables, readInteractionsFile } from './lib/interactions-csv.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    model: { type: 'string', default: 'auto' },
    search: { type: 'string' },
    budget: { type: 'string' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string' },
    out: { type: 'string' },
  },
});
const config = loadConfig();
const model = values.model ?? 'auto';
const search = values.search ?? config.TUNE_SEARCH;
const budgetSeconds = values.budget ? Number(values.budget) : config.TUNE_BUDGET_SECONDS;
if (
  !values.data ||
  !values.out ||
  (model !== 'auto' && !isFamily(model)) ||
  !isSearchKind(search) ||
  !(budgetSeconds > 0)
) {
  console.error(
    `usage: npm run tune -- --data all.csv [--model auto|${FAMILIES.join('|')}] [--search ${SEARCH_KINDS.join('|')}] [--budget seconds > 0] --out best.json`,
  );
  process.exit(2);
}

const started = performance.now();
const ids = new IdTables();
const log = await readInteractionsFile(values.data, ids);
// Outer split: only its training part is used from here on; selection cuts the validation split from it.
const outer = splitLog(log, ids.users.size, ids.items.size, ids.typeNames());
const threads = values.threads ? Number(values.threads) : os.availableParallelism();
const executors = await createExecutors(threads, (why) => console.error(`worker threads unavailable: ${why}`));
try {
  const selection = await selectModel(outer.train, executors, {
    search,
    budgetSeconds,
    seed: Number(values.seed),
    families: model === 'auto' ? FAMILIES : [model],
    easeMaxItems: config.EASE_MAX_ITEMS,
    neighbours: config.MODEL_NEIGHBOURS,
    log: (message) => console.error(message),
  });
  const document: Record<string, unknown> = {
    _about: `npm run tune --model ${model} --search ${search} --budget ${budgetSeconds}: NDCG@10 on a validation split cut from the training part of the temporal split`,
    chosen: selection.chosen,
  };
  for (const outcome of selection.outcomes) {
    document[outcome.family] = {
      params: outcome.params,
      'validationNdcg@10': outcome.validation.ndcg,
      trials: selection.trials.filter((t) => t.family === outcome.family).length,
    };
  }
  document.seconds = Math.round((performance.now() - started) / 1000);
  document.peakRssMb = peakRssMb();
  writeFileSync(values.out, `${JSON.stringify(document, null, 2)}\n`);
  console.log(
    JSON.stringify({ chosen: selection.chosen, params: selection.params, validationNdcg: selection.validation.ndcg }),
  );
} finally {
  await executors.close();
}
