// `npm run evaluate -- --train train.csv --test test.csv --model <name> [--k 10] [--params '{"factors":64}']`
// `npm run evaluate -- --data all.csv --split temporal --model <name> [--params-file best.json] [--threads 2]`
// Prints one JSON object on stdout; progress goes to stderr.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createAlsExecutor } from '../model/als-pool.ts';
import { isModelName, MODEL_NAMES } from '../model/evaluation.ts';
import { loadSplitData, readParams, runEvaluation } from './lib/evaluation-run.ts';

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
  },
});

const model = values.model ?? '';
if (!isModelName(model)) {
  console.error(`--model must be one of ${MODEL_NAMES.join(', ')}`);
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

const params = readParams(values.params, values['params-file'], model);
console.error(`loading ${values.data ?? `${values.train} + ${values.test}`}`);
const data = await loadSplitData(values);
console.error(`${data.train.log.user.length} training events, ${data.train.users} users, ${data.train.items} items`);
const threads = values.threads ? Number(values.threads) : os.availableParallelism();
const executor = await createAlsExecutor(model === 'als' ? threads : 1, (why) =>
  console.error(`worker threads unavailable, training on one thread: ${why}`),
);
try {
  const report = await runEvaluation(model, params, data, k, executor);
  console.log(JSON.stringify(report));
} finally {
  await executor.close();
}
