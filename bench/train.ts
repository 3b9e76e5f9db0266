// `npm run bench -- train [--factors=64] [--iterations=3] [--skip-10m] [--skip-als] [--skip-ease] [--skip-e2e]`
// ALS training speed and memory on SYNTHETIC data with real structure: power-law item popularity, users with
// latent tastes (two preferred clusters of items each), and view/click/cart/purchase events.
//   1M interactions (100k users × 20k items): seconds per iteration on every core vs the same code on one thread.
//   10M interactions: trained in a child process so its peak RSS is its own.
//   Fold-in of a 50-interaction shopper at 64 factors: median and p99 in ms.
// EASE fit at 5k, 10k and 20k catalogue items (same synthetic shape, 50 interactions per item), each in a child
// process (peak RSS its own), with the EASE_MAX_ITEMS cap: above it EASE fits the most-shopped items only.
// End to end: a training with tuning (TUNE_BUDGET_SECONDS, TUNE_SEARCH from config) on the demo data, in a
// fresh database, from reading the event log to the stored version.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { createDb } from '../src/db/client.ts';
import { createLogger } from '../src/logger.ts';
import { AlsTrainer, seededRandom } from '../src/model/als.ts';
import { type AlsExecutor, createAlsExecutor, inProcessExecutor } from '../src/model/als-pool.ts';
import { easeItems, fitEase } from '../src/model/ease.ts';
import { createEaseExecutor } from '../src/model/ease-pool.ts';
import { foldIn, makeFoldInScratch } from '../src/model/fold-in.ts';
import { buildCsr, type Csr } from '../src/model/interactions.ts';
import { loadDemoDataIfEmpty } from '../src/services/demo.ts';
import { ShopperIds } from '../src/services/shopper-ids.ts';
import { trainModelVersion } from '../src/services/training.ts';
import { percentile, writeResults } from './lib/results.ts';
import { createBenchEnvironment } from './lib/services.ts';

function arg(name: string, fallback: number): number {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.slice(name.length + 3)) : fallback;
}

const FACTORS = arg('factors', 64);
const ITERATIONS = arg('iterations', 3);
const EVENT_WEIGHTS = [1, 2, 4, 8]; // view, click, cart, purchase
const EVENT_SHARES = [0.7, 0.9, 0.97, 1]; // cumulative

/** Cumulative Zipf weights 1/rank^s over n ranks. */
function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let r = 0; r < n; r++) {
    total += 1 / (r + 1) ** s;
    cdf[r] = total;
  }
  for (let r = 0; r < n; r++) cdf[r] = (cdf[r] as number) / total;
  return cdf;
}

function drawFrom(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cdf[mid] as number) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** User × item matrix of summed event weights with `interactions` events. */
function synthetic(users: number, items: number, interactions: number, seed: number): Csr {
  const random = seededRandom(seed);
  const clusters = 64;
  // Items: a random popularity rank (Zipf 1.0 overall) and a random taste cluster.
  const rankToItem = Int32Array.from({ length: items }, (_, i) => i);
  for (let i = items - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = rankToItem[i] as number;
    rankToItem[i] = rankToItem[j] as number;
    rankToItem[j] = t;
  }
  const members: number[][] = Array.from({ length: clusters }, () => []);
  for (let r = 0; r < items; r++) members[Math.floor(random() * clusters)]?.push(rankToItem[r] as number);
  const globalCdf = zipfCdf(items, 1.0);
  const clusterCdfs = members.map((m) => zipfCdf(Math.max(1, m.length), 1.0));
  // Users: activity Zipf 0.6 (a few heavy shoppers), two preferred clusters each.
  const userCdf = zipfCdf(users, 0.6);
  const taste = new Int32Array(users * 2);
  for (let i = 0; i < taste.length; i++) taste[i] = Math.floor(random() * clusters);
  const u = new Int32Array(interactions);
  const it = new Int32Array(interactions);
  const w = new Float32Array(interactions);
  for (let e = 0; e < interactions; e++) {
    const user = drawFrom(userCdf, random());
    const roll = random();
    let item: number;
    if (roll < 0.75) {
      const c = taste[user * 2 + (roll < 0.5 ? 0 : 1)] as number;
      const m = members[c] as number[];
      item = m[drawFrom(clusterCdfs[c] as Float64Array, random())] ?? 0;
    } else {
      item = rankToItem[drawFrom(globalCdf, random())] as number;
    }
    const kind = random();
    let t = 0;
    while (kind > (EVENT_SHARES[t] as number)) t++;
    u[e] = user;
    it[e] = item;
    w[e] = EVENT_WEIGHTS[t] as number;
  }
  return buildCsr(users, items, u, it, w);
}

const params = { factors: FACTORS, lambda: 0.1, alpha: 2, confidence: 'log' as const, cgSteps: 3 };

/** Seconds per iteration, averaged over `ITERATIONS` after one warm-up iteration. */
async function secondsPerIteration(matrix: Csr, executor: AlsExecutor): Promise<{ trainer: AlsTrainer; s: number }> {
  const trainer = new AlsTrainer(matrix, params, executor);
  await trainer.iterate(1);
  const started = performance.now();
  await trainer.iterate(ITERATIONS);
  return { trainer, s: (performance.now() - started) / 1000 / ITERATIONS };
}

/** Runs this file in a child process with `args` and returns the last JSON line it printed. */
function child(args: string[]): Record<string, unknown> {
  const file = fileURLToPath(import.meta.url);
  const stdout = execFileSync(process.execPath, [...process.execArgv, file, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

const easeOnly = process.argv.find((a) => a.startsWith('--only-ease='));
if (easeOnly) {
  // Child mode: one EASE fit at this catalogue size, one JSON line on stdout.
  const items = Number(easeOnly.slice('--only-ease='.length));
  const maxItems = loadConfig().EASE_MAX_ITEMS;
  const matrix = synthetic(Math.max(20_000, items * 5), items, items * 50, 13);
  const executor = await createEaseExecutor(os.availableParallelism(), (why) => console.error(`one thread: ${why}`));
  const rssBefore = Math.round(process.resourceUsage().maxRSS / 1024);
  const t0 = performance.now();
  await fitEase(matrix, { lambda: 300, maxItems }, executor);
  const seconds = (performance.now() - t0) / 1000;
  await executor.close();
  console.log(
    JSON.stringify({
      catalogueItems: items,
      fittedItems: easeItems(matrix, 1, maxItems).length,
      maxItems,
      users: matrix.rows,
      distinctPairs: matrix.indptr[matrix.rows],
      threads: executor.threads,
      fitSeconds: Math.round(seconds * 10) / 10,
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      rssBeforeFitMb: rssBefore,
    }),
  );
} else if (process.argv.includes('--only-e2e')) {
  // Child mode: load the demo data into a fresh database and train one version with tuning.
  const env = await createBenchEnvironment('train');
  // The e2e figure is selection's: every family, as a shop's first training runs it.
  const config = loadConfig({ ...process.env, ...env.roleEnv, TRAIN_MODEL: 'auto', LOG_LEVEL: 'info' });
  const logger = createLogger('info', 'train-bench', 2);
  const db = createDb(config.DATABASE_URL, { poolSize: 4, onError: (e) => logger.warn({ err: e.message }, 'pg') });
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2 });
  try {
    const loaded = await loadDemoDataIfEmpty(db, pool, logger);
    const t0 = performance.now();
    const outcome = await trainModelVersion(db, logger, {
      model: config.TRAIN_MODEL,
      search: config.TUNE_SEARCH,
      budgetSeconds: config.TUNE_BUDGET_SECONDS,
      neighbours: config.MODEL_NEIGHBOURS,
      easeMaxItems: config.EASE_MAX_ITEMS,
      threads: config.TRAIN_THREADS,
      weights: config.EVENT_WEIGHTS,
      pinMargin: config.MODEL_PIN_MARGIN,
      personalByDefault: true,
      ids: new ShopperIds(''),
    });
    const seconds = (performance.now() - t0) / 1000;
    if ('skipped' in outcome) throw new Error(`training skipped: ${outcome.skipped}`);
    const v = outcome.version;
    console.log(
      JSON.stringify({
        data: 'demo (data/demo/online-retail-ii-slice.csv.gz)',
        events: loaded.events,
        items: v.items,
        users: v.users,
        search: config.TUNE_SEARCH,
        budgetSeconds: config.TUNE_BUDGET_SECONDS,
        chosen: v.algorithm,
        holdoutNdcg10: (v.metrics as Record<string, unknown> | null)?.['ndcg@10'],
        trials: Array.isArray(v.trials) ? v.trials.length : 0,
        timings: v.timings,
        seconds: Math.round(seconds * 10) / 10,
        targetAtMost120s: seconds <= 120,
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      }),
    );
  } finally {
    await pool.end();
    await db.$disconnect();
    await env.drop();
  }
} else if (process.argv.includes('--only-10m')) {
  // Child mode: one 10M run, one JSON line on stdout.
  const t0 = performance.now();
  const matrix = synthetic(100_000, 20_000, 10_000_000, 11);
  const buildSeconds = (performance.now() - t0) / 1000;
  const executor = await createAlsExecutor(os.availableParallelism(), (why) => console.error(`one thread: ${why}`));
  const { s } = await secondsPerIteration(matrix, executor);
  await executor.close();
  console.log(
    JSON.stringify({
      interactions: 10_000_000,
      distinctPairs: matrix.indptr[matrix.rows],
      threads: executor.threads,
      buildSeconds: Math.round(buildSeconds * 100) / 100,
      secondsPerIteration: Math.round(s * 1000) / 1000,
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
} else {
  // Sections skipped on this run keep the figures of the run before (with when they were taken).
  let previous: Record<string, unknown> = {};
  try {
    previous = JSON.parse(readFileSync(fileURLToPath(new URL('./results/train.json', import.meta.url)), 'utf8'));
  } catch {
    previous = {};
  }
  const carried = (key: string) =>
    previous[key] === undefined ? 'skipped' : { ...(previous[key] as object), ranAt: previous.ranAt };
  const alsKeys = ['data', 'params', 'oneMillion', 'tenMillion', 'foldInMedianMs', 'foldInP99Ms', 'foldInInteractions'];
  let alsFigures: Record<string, unknown> = {
    ...Object.fromEntries(alsKeys.map((key) => [key, previous[key]])),
    alsRanAt: previous.alsRanAt ?? previous.ranAt,
  };
  if (!process.argv.includes('--skip-als')) {
    const matrix = synthetic(100_000, 20_000, 1_000_000, 7);
    console.error(`1M synthetic: ${matrix.indptr[matrix.rows]} distinct user-item pairs`);
    const pool = await createAlsExecutor(os.availableParallelism(), (why) => console.error(`one thread: ${why}`));
    const multi = await secondsPerIteration(matrix, pool);
    await pool.close();
    console.error(`${pool.threads} threads: ${multi.s.toFixed(3)} s/iteration`);
    const single = await secondsPerIteration(matrix, inProcessExecutor());
    console.error(`1 thread: ${single.s.toFixed(3)} s/iteration`);

    // Fold-in: shoppers of 50 distinct items with event weights, against the trained item factors.
    const model = multi.trainer.model();
    const random = seededRandom(99);
    const scratch = makeFoldInScratch(FACTORS);
    const out = new Float32Array(FACTORS);
    const items = new Int32Array(50);
    const weights = new Float32Array(50);
    const times = new Float64Array(3000);
    for (let rep = -300; rep < times.length; rep++) {
      for (let i = 0; i < 50; i++) {
        items[i] = Math.floor(random() * model.items);
        weights[i] = EVENT_WEIGHTS[Math.floor(random() * 4)] as number;
      }
      const t = performance.now();
      foldIn(model, items, weights, out, scratch);
      if (rep >= 0) times[rep] = performance.now() - t;
    }
    times.sort();

    let tenM: unknown = 'skipped (--skip-10m)';
    if (!process.argv.includes('--skip-10m')) {
      console.error('10M synthetic in a child process…');
      const file = fileURLToPath(import.meta.url);
      const stdout = execFileSync(process.execPath, [...process.execArgv, file, '--only-10m', `--factors=${FACTORS}`], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1 << 20,
      });
      tenM = JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
    }

    alsFigures = {
      data: 'synthetic: 100k users × 20k items, Zipf(1.0) item popularity, 64 taste clusters (2 per user), Zipf(0.6) user activity, view/click/cart/purchase weighted 1/2/4/8',
      params: { ...params, timedIterations: ITERATIONS },
      oneMillion: {
        interactions: 1_000_000,
        distinctPairs: matrix.indptr[matrix.rows],
        threads: pool.threads,
        secondsPerIteration: Math.round(multi.s * 1000) / 1000,
        secondsPerIterationOneThread: Math.round(single.s * 1000) / 1000,
        speedup: Math.round((single.s / multi.s) * 100) / 100,
        targetAtMost1_5s: multi.s <= 1.5,
      },
      tenMillion: tenM,
      foldInMedianMs: Math.round(percentile(times, 50) * 10_000) / 10_000,
      foldInP99Ms: Math.round(percentile(times, 99) * 10_000) / 10_000,
      foldInInteractions: 50,
      foldInTargetMedianAtMost0_2ms: percentile(times, 50) <= 0.2,
      peakRssMbOneMillionProcess: Math.round(process.resourceUsage().maxRSS / 1024),
      alsRanAt: new Date().toISOString(),
    };
  }
  let ease: unknown = carried('ease');
  if (!process.argv.includes('--skip-ease')) {
    const sizes = [5000, 10_000, 20_000].map((items) => {
      console.error(`EASE at ${items} items in a child process…`);
      return child([`--only-ease=${items}`]);
    });
    ease = { lambda: 300, sizes };
  }
  let endToEnd: unknown = carried('endToEnd');
  if (!process.argv.includes('--skip-e2e')) {
    console.error('training with tuning on the demo data in a child process…');
    endToEnd = child(['--only-e2e']);
  }
  writeResults('train', { ...alsFigures, ease, endToEnd, loadAverage: os.loadavg() });
}
