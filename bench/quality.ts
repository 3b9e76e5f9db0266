// `npm run bench -- quality [--data file.csv] [--models popularity,cooccurrence,itemknn,ease,als]`
// Every model side by side under the evaluation protocol of datasets/README.md (per-user temporal hold-out,
// NDCG@10 etc.). Default data: Online Retail II imported from the shared gz on the fly. Tuned parameters come
// from src/model/tuned/online-retail-ii.json (tuned on a validation split inside the training part only).
// Data: Chen, D. (2012). Online Retail II. UCI ML Repository, CC BY 4.0, https://doi.org/10.24432/C5CG6D
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type EvaluationReport, runEvaluation, type SplitData, splitLog } from '../src/cli/lib/evaluation-run.ts';
import { IdTables, readInteractionRecords, readInteractionsFile } from '../src/cli/lib/interactions-csv.ts';
import { RETAIL_GZ, readRetailPurchases } from '../src/cli/lib/retail.ts';
import { isModelName, type ModelName, type ModelParams } from '../src/model/evaluation.ts';
import { createExecutors } from '../src/model/executors.ts';
import { writeResults } from './lib/results.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    models: { type: 'string', default: 'popularity,cooccurrence,itemknn,als,ease' },
    tuned: {
      type: 'string',
      default: fileURLToPath(new URL('../src/model/tuned/online-retail-ii.json', import.meta.url)),
    },
    k: { type: 'string', default: '10' },
  },
});
const k = Number(values.k);

async function* retailRecords(): AsyncGenerator<string[]> {
  yield ['user', 'item', 'timestamp', 'type', 'value'];
  for await (const r of readRetailPurchases(RETAIL_GZ))
    yield [r.user, r.item, r.timestamp, 'purchase', String(r.quantity)];
}

const ids = new IdTables();
const log = values.data
  ? await readInteractionsFile(values.data, ids)
  : await readInteractionRecords(retailRecords(), ids, RETAIL_GZ);
const data: SplitData = splitLog(log, ids.users.size, ids.items.size, ids.typeNames());
console.error(`${log.user.length} events, ${ids.users.size} users, ${ids.items.size} items`);

let tuned: Record<string, { params?: ModelParams }> = {};
try {
  tuned = JSON.parse(readFileSync(values.tuned, 'utf8')) as typeof tuned;
} catch {
  console.error(`no tuned parameters at ${values.tuned}; using defaults`);
}

// Each entry: a label, the model and its params. ALS runs with defaults and tuned, to show what tuning bought.
const runs: { label: string; model: ModelName; params: ModelParams }[] = [];
for (const name of (values.models ?? '').split(',')) {
  if (!isModelName(name)) throw new Error(`unknown model ${name}`);
  const params = tuned[name]?.params;
  if (name === 'als') runs.push({ label: 'als (defaults)', model: 'als', params: {} });
  runs.push({ label: params ? `${name} (tuned)` : name, model: name, params: params ?? {} });
}

const executor = await createExecutors(os.availableParallelism(), (why) => console.error(`one thread: ${why}`));
const reports: (EvaluationReport & { label: string })[] = [];
try {
  for (const run of runs) {
    console.error(`fitting ${run.label}…`);
    const report = await runEvaluation(run.model, run.params, data, k, executor);
    console.error(`${run.label}: ndcg@${k} ${report.metrics[`ndcg@${k}`]?.toFixed(4)} in ${report.trainSeconds} s`);
    reports.push({ label: run.label, ...report });
  }
} finally {
  await executor.close();
}

const ndcgKey = `ndcg@${k}`;
const ndcgOf = (r: EvaluationReport) => r.metrics[ndcgKey] ?? 0;
const best = reports.reduce((a, b) => (ndcgOf(b) > ndcgOf(a) ? b : a));
const cooccurrence = reports.find((r) => r.model === 'cooccurrence');
writeResults('quality', {
  dataset: values.data ?? 'Online Retail II (Chen 2012, UCI #502, CC BY 4.0), purchases with a customer id',
  protocol: 'per-user temporal hold-out of datasets/README.md: last 20 % of distinct items (users with ≥ 5)',
  events: log.user.length,
  users: ids.users.size,
  items: ids.items.size,
  k,
  models: reports.map((r) => ({
    label: r.label,
    model: r.model,
    params: r.params,
    metrics: r.metrics,
    users: r.users,
    trainSeconds: r.trainSeconds,
  })),
  best: { label: best.label, [ndcgKey]: ndcgOf(best) },
  targets: {
    bestNdcgAtLeast010: ndcgOf(best) >= 0.1,
    bestBeatsCooccurrence: cooccurrence ? ndcgOf(best) > ndcgOf(cooccurrence) : null,
  },
  peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
});
