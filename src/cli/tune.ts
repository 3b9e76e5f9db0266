// `npm run tune -- --data all.csv --model als [--trials 12] [--k 10] [--seed 1] --out best.json`
// Random search with successive halving (ALS: trials start at a few iterations and the best third continue),
// scored by NDCG@k on a validation split cut from the TRAINING part only: the protocol's temporal split is
// applied once to the data (the test part is never read again) and once more inside the training part.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger } from '../logger.ts';
import { AlsTrainer, alsRecommender, seededRandom } from '../model/als.ts';
import { type AlsExecutor, createAlsExecutor } from '../model/als-pool.ts';
import {
  evaluateRecommender,
  fitModel,
  historyMatrix,
  isModelName,
  type ModelName,
  type ModelParams,
} from '../model/evaluation.ts';
import type { Csr } from '../model/interactions.ts';
import { Progress } from '../progress.ts';
import { peakRssMb, type SplitData, splitLog } from './lib/evaluation-run.ts';
import { IdTables, readInteractionsFile } from './lib/interactions-csv.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    model: { type: 'string', default: 'als' },
    trials: { type: 'string', default: '12' },
    k: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string' },
    out: { type: 'string' },
  },
});
const model = values.model ?? '';
if (!values.data || !values.out || !isModelName(model)) {
  console.error(
    'usage: npm run tune -- --data all.csv --model als|itemknn|ease|cooccurrence [--trials N] --out best.json',
  );
  process.exit(2);
}
const trials = Number(values.trials);
// Percent, rate and ETA of the first rung's trials (the bulk of the work), on stderr beside the trial lines.
const progress = new Progress(createLogger('info', 'tune', 2), 'tuning trials', { total: trials, everyMs: 0 });
const k = Number(values.k);
const random = seededRandom(Number(values.seed));

const logUniform = (lo: number, hi: number) => Math.exp(Math.log(lo) + random() * (Math.log(hi) - Math.log(lo)));
const pick = <T>(options: readonly T[]): T => options[Math.floor(random() * options.length)] as T;
const round3 = (x: number) => Number(x.toPrecision(3));

/** One random point of the search space of `name`; event-type weights only when the data has several types. */
function sample(name: ModelName, typeNames: readonly string[]): ModelParams {
  const weighting: Record<string, unknown> = { halfLifeDays: pick([0, 0, 90, 180, 365, 730]) };
  if (typeNames.length > 1) {
    // Increasing weights in the order of DEFAULT_TYPE_WEIGHTS' intent: each type gets a random log-scale weight.
    weighting.typeWeights = Object.fromEntries(typeNames.map((t) => [t, round3(logUniform(0.5, 16))]));
  }
  switch (name) {
    case 'als': {
      const confidence = pick(['linear', 'log'] as const);
      return {
        factors: pick([32, 48, 64, 96, 128]),
        lambda: round3(logUniform(0.01, 20)),
        alpha: round3(confidence === 'log' ? logUniform(1, 100) : logUniform(0.5, 50)),
        confidence,
        epsilon: round3(logUniform(0.1, 10)),
        cgSteps: 3,
        ...weighting,
      };
    }
    case 'itemknn':
      return {
        neighbours: pick([50, 100, 200, 400, 800]),
        alpha: round3(random()),
        shrink: round3(logUniform(0.1, 100)),
        userPenalty: round3(random()),
        power: round3(1 + 2 * random()),
        ...weighting,
      };
    case 'ease':
      return { lambda: round3(logUniform(20, 3000)), minUsers: pick([1, 2, 3]) };
    case 'cooccurrence':
      return { neighbours: pick([50, 100, 200, 400]) };
    case 'popularity':
      return {};
  }
}

interface Trial {
  params: ModelParams;
  score: number;
  iterations?: number;
  trainer?: AlsTrainer;
  history?: Csr;
}

async function tuneAls(data: SplitData, executor: AlsExecutor): Promise<Trial[]> {
  const score = (trainer: AlsTrainer, history: Csr) =>
    evaluateRecommender(alsRecommender(trainer.model()), history, data.testIndptr, data.testItems, k).ndcg;
  // Rungs of total iterations; a third of the trials survive each rung.
  const rungs = [3, 8, 15];
  let alive: Trial[] = [];
  for (let t = 0; t < trials; t++) {
    const params = sample('als', data.train.typeNames);
    const history = historyMatrix(data.train, params);
    const trainer = new AlsTrainer(history, params, executor);
    await trainer.iterate(rungs[0]);
    const trial = { params, score: score(trainer, history), iterations: rungs[0], trainer, history };
    console.error(`trial ${t + 1}/${trials} ${JSON.stringify(params)} → ndcg@${k} ${trial.score.toFixed(4)}`);
    progress.update(t + 1);
    alive.push(trial);
  }
  const finished: Trial[] = [...alive];
  for (let r = 1; r < rungs.length; r++) {
    alive.sort((a, b) => b.score - a.score);
    alive = alive.slice(0, Math.max(1, Math.ceil(alive.length / 3)));
    for (const trial of alive) {
      const trainer = trial.trainer as AlsTrainer;
      await trainer.iterate((rungs[r] as number) - (trial.iterations as number));
      trial.iterations = rungs[r];
      trial.score = score(trainer, trial.history as Csr);
      console.error(
        `rung ${r}: ${trial.iterations} iterations ${JSON.stringify(trial.params)} → ${trial.score.toFixed(4)}`,
      );
    }
  }
  return finished.map((t) => ({ params: { ...t.params, iterations: t.iterations }, score: t.score }));
}

async function tuneOther(name: ModelName, data: SplitData, executor: AlsExecutor): Promise<Trial[]> {
  const results: Trial[] = [];
  for (let t = 0; t < trials; t++) {
    const params = sample(name, data.train.typeNames);
    const { recommender, history } = await fitModel(name, params, data.train, executor);
    const score = evaluateRecommender(recommender, history, data.testIndptr, data.testItems, k).ndcg;
    console.error(`trial ${t + 1}/${trials} ${JSON.stringify(params)} → ndcg@${k} ${score.toFixed(4)}`);
    progress.update(t + 1);
    results.push({ params, score });
  }
  return results;
}

const started = performance.now();
const ids = new IdTables();
const log = await readInteractionsFile(values.data, ids);
const users = ids.users.size;
const items = ids.items.size;
// Outer split: only its training part is used from here on. Inner split: validation from that training part.
const outer = splitLog(log, users, items, ids.typeNames());
const inner = splitLog(outer.train.log, users, items, ids.typeNames());
console.error(
  `tuning ${model} on ${inner.train.log.user.length} events, validating on ${inner.testItems.length} held-out items`,
);
const threads = values.threads ? Number(values.threads) : os.availableParallelism();
const executor = await createAlsExecutor(model === 'als' ? threads : 1, (why) =>
  console.error(`worker threads unavailable, training on one thread: ${why}`),
);
try {
  const results = model === 'als' ? await tuneAls(inner, executor) : await tuneOther(model, inner, executor);
  results.sort((a, b) => b.score - a.score);
  const best = results[0];
  if (!best) throw new Error('no trial ran');
  const document = {
    model,
    params: best.params,
    validation: {
      [`ndcg@${k}`]: best.score,
      split: 'temporal protocol inside the training part of the temporal split',
    },
    trials: results.map((r) => ({ params: r.params, [`ndcg@${k}`]: r.score })),
    seconds: Math.round((performance.now() - started) / 1000),
    peakRssMb: peakRssMb(),
  };
  writeFileSync(values.out, `${JSON.stringify(document, null, 2)}\n`);
  console.log(JSON.stringify({ model, params: best.params, validation: document.validation }));
} finally {
  await executor.close();
}
