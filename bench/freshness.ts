// npm run bench -- freshness [--seconds 60] [--rate <events/s>] [--rate-fraction 0.2] [--subscribers 1000]
//   [--ceiling-seconds 10] [--ceiling-connections 32] [--drain-seconds 10]
//   [--no-capacity] [--step-seconds 15] [--fractions 0.2,0.3,0.4,0.5,0.6,0.7,0.8,1]
//   [--no-training] [--train-at 0.33]
//   [--no-fanout] [--fanout-subscriptions 10000] [--fanout-connections 20] [--fanout-window-seconds 10]
//   [--no-memory] [--no-polling] [--item-to-item] [--out freshness] [--profile-dir <dir>]
//
// --item-to-item serves an item-to-item version instead: after the seed training, a version whose neighbour
// table is each item's top 100 by cosine of the trained item vectors (the shape EASE and item-kNN serve from)
// is stored and activated, so every list is the shopper's history times the table. A retrain mid-run would
// replace it with the trainer's choice; use it with --no-training to measure the table path alone.
// --out names the results file (bench/results/<out>.json).
// --profile-dir writes CPU profiles of both gateways and the worker over the main run into that folder.
//
// Event → push latency across replicas: two gateway processes and one worker process (and the trainer, once it
// is a process of its own) share Postgres and Redis; half the shoppers subscribe on gateway A and half on B,
// and each shopper's events are sent to the other gateway. A model is trained first on seeded purchase
// histories, so every event goes the full way: features, fold-in of the shopper's vector, HNSW retrieval,
// diff, push. Each event is the purchase of an item on the shopper's current list, so it must change the list
// (a push goes out only on a change).
//
// What the figures mean
// - ceilingRps: the closed-loop ceiling of a trivial query (`{ __typename }`, autocannon, 32 connections) on
//   one gateway of this run, as bench/ingest.ts measures it. Machines of the same kind differ by 3×, so the
//   event rate is a fraction of it: `rate` = `rateFraction` × ceilingRps (20 % unless --rate gives events/s).
// - Latency (p50Ms, p99Ms…): from just before the trackEvent request to the push that names the event
//   (`causedBy.eventId`), over the events whose own push arrived ("answeredDirectly").
// - superseded: an event whose shopper got a push naming a later event of theirs first; that push carries
//   the earlier event's effect too (the worker announces a shopper once per job, the gateway folds changes
//   that arrive during a recompute into one), so nothing was missed, but it has no latency of its own.
// - lostPushes: events whose effect the shopper never saw within --drain-seconds (10 s) after the load of
//   its phase stopped: no push naming the event or a later event of the same shopper, and no other push
//   after it whose list lacks the item bought. shownByOtherPush counts that last kind of delivery: a
//   fan-out recompute, or one for an earlier event of the shopper, ran after the worker applied the event
//   and before its announcement reached the gateway; the list then does not change again, so no push names
//   the event. See bench/README.md.
// - Windows (by when an event was sent): the main run (--seconds at `rate`); `duringTraining`, from the
//   retrainModel request to the new version serving on both gateways and its MODEL pushes over (none for
//   500 ms); `outsideTraining`, the rest of the main run (which lasts --seconds, or until the training
//   window has closed if that is later). Capacity steps (--step-seconds each) and fan-out windows (from the
//   trigger's request until --fanout-window-seconds after its answer, longer while its pushes keep coming)
//   are separate phases.
// - capacityFraction: the highest step fraction of ceilingRps at which p99 ≤ 50 ms with 0 lost and 0 failed;
//   the steps run in order and stop at the first that misses. 0 means even the first step missed.
// - fanOut: with --fanout-subscriptions open in all (the shoppers' own, plus more multiplexed over a few
//   connections that watch seeded shoppers who send no events, several subscriptions each), the shopper
//   stream at `rate`, and in turn nothing (`quiet`), an upsertItems of one item (a price change of the
//   in-stock item on most lists) and a model activation (rollbackModel to the other READY version). Per
//   window: CPU seconds of the gateway processes (utime + stime from /proc/<pid>/stat, both gateways summed;
//   `quiet` is what the stream alone costs), pushes received by trigger, and the freshness of the shopper
//   events sent in it.
// - Baseline in the same run: the staleness a storefront polling `recommendations` once a second would see.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createDb } from '../src/db/client.ts';
import { completeModelVersion, createModelVersion, loadModelVectors } from '../src/db/models.ts';
import { neighbourTableFromRows } from '../src/model/neighbour-table.ts';
import { PubSub } from '../src/realtime/pubsub.ts';
import { LiveEventsReader } from '../src/workers/live-events.ts';
import { createEventsQueue } from '../src/workers/queues.ts';
import { closeHttp, post, postAdmin, postAdminWhenAccepted, trivialQueryCeiling } from './lib/graphql-http.ts';
import { WindowProfiler } from './lib/inspector.ts';
import { CpuMeter, cpuSeconds, rssBytes } from './lib/process-cpu.ts';
import { percentile, writeResults } from './lib/results.ts';
import {
  BENCH_SERVER_URL,
  createBenchEnvironment,
  freePort,
  postgresBackendPids,
  startProcess,
} from './lib/services.ts';
import {
  type LoadStats,
  openMultiplexedSubscriptions,
  PushCounter,
  type SentEvent,
  ShopperLoad,
  sentBetween,
  summarize,
  summarizeStages,
  WATCH,
} from './lib/shopper-load.ts';
import { measureIdleSubscriberBytes } from './lib/subscriber-memory.ts';

const { values } = parseArgs({
  allowNegative: true,
  options: {
    subscribers: { type: 'string', default: '1000' },
    rate: { type: 'string' },
    'rate-fraction': { type: 'string', default: '0.2' },
    seconds: { type: 'string', default: '60' },
    'ceiling-seconds': { type: 'string', default: '10' },
    'ceiling-connections': { type: 'string', default: '32' },
    'drain-seconds': { type: 'string', default: '10' },
    capacity: { type: 'boolean', default: true },
    'step-seconds': { type: 'string', default: '15' },
    fractions: { type: 'string', default: '0.2,0.3,0.4,0.5,0.6,0.7,0.8,1' },
    training: { type: 'boolean', default: true },
    'train-at': { type: 'string', default: '0.33' },
    fanout: { type: 'boolean', default: true },
    'fanout-subscriptions': { type: 'string', default: '10000' },
    'fanout-connections': { type: 'string', default: '20' },
    'fanout-window-seconds': { type: 'string', default: '10' },
    memory: { type: 'boolean', default: true },
    polling: { type: 'boolean', default: true },
    /** Writes CPU profiles of both gateways and the worker over the main run (load and drain) into this folder. */
    'profile-dir': { type: 'string' },
    'item-to-item': { type: 'boolean', default: false },
    out: { type: 'string', default: 'freshness' },
  },
});
const SUBSCRIBERS = Number(values.subscribers);
const RATE_FRACTION = Number(values['rate-fraction']);
const SECONDS = Number(values.seconds);
const DRAIN_MS = Number(values['drain-seconds']) * 1000;
const STEP_SECONDS = Number(values['step-seconds']);
const FRACTIONS = values.fractions.split(',').map(Number);
const TRAIN_AT = Number(values['train-at']);
const FANOUT_SUBSCRIPTIONS = Number(values['fanout-subscriptions']);
const FANOUT_CONNECTIONS = Number(values['fanout-connections']);
const FANOUT_WINDOW_MS = Number(values['fanout-window-seconds']) * 1000;
/** Longest a fan-out window waits for its trigger's last pushes after the trigger answered. */
const FANOUT_MAX_WAIT_MS = 300_000;
const ITEMS = 2000;
/** Taste groups: seeded shoppers buy within one group, so the model has structure to learn. */
const TASTES = 20;
const SEED_PURCHASES_PER_SHOPPER = 8;
const POLL_SAMPLES = 40;
const POLL_CONCURRENCY = 4;
const P99_TARGET_MS = 50;
/** Fan-out subscriptions beyond the shoppers' own, multiplexed; every gateway must accept this many per connection. */
const EXTRA_SUBSCRIPTIONS = Math.max(0, FANOUT_SUBSCRIPTIONS - SUBSCRIBERS);
const PER_CONNECTION = Math.max(20, Math.ceil(EXTRA_SUBSCRIPTIONS / FANOUT_CONNECTIONS));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const loadAverage = () => os.loadavg().map((load) => Math.round(load * 100) / 100);

/** The largest value `read` returns while it runs, sampled every `everyMs`. */
function sampleMax(read: () => Promise<number>, everyMs = 500) {
  let max = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      max = Math.max(max, await read().catch(() => 0));
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return max;
    },
  };
}

/**
 * Starts the trainer as a process of its own when the code has one (src/trainer.ts, `npm run start:trainer`);
 * until then training runs inside the worker, and there is nothing to start.
 */
async function startTrainer(env: Record<string, string>) {
  if (!existsSync(fileURLToPath(new URL('../src/trainer.ts', import.meta.url)))) return undefined;
  return startProcess('trainer.ts', [], env);
}

const loadAtStart = loadAverage();
const benchStartedAt = performance.now();
const env = await createBenchEnvironment('freshness', { privateRedis: true });
const shared = env.roleEnv;
const ports = [await freePort(), await freePort()];
const PROFILE_DIR = values['profile-dir'];
/** Inspector ports of the worker and the two gateways, when the main run is profiled. */
const inspectPorts = PROFILE_DIR ? [await freePort(), await freePort(), await freePort()] : [];
const inspectFlag = (n: number) => (PROFILE_DIR ? [`--inspect=127.0.0.1:${inspectPorts[n]}`] : []);
const worker = await startProcess('worker.ts', [], shared, undefined, inspectFlag(0));
const trainer = await startTrainer(shared);
const gateways = await Promise.all(
  ports.map((port, n) =>
    startProcess(
      'server.ts',
      ['--role=gateway'],
      { ...shared, PORT: String(port), MAX_SUBSCRIPTIONS_PER_CONNECTION: String(PER_CONNECTION) },
      `http://127.0.0.1:${port}/ready`,
      inspectFlag(n + 1),
    ),
  ),
);
const urls = ports.map((port) => `http://127.0.0.1:${port}`);
const pgAdmin = new pg.Client({ connectionString: `${BENCH_SERVER_URL}/postgres` });
await pgAdmin.connect();
/** CPU by role: the processes of this run only (its own redis-server, its database's Postgres backends). */
const cpu = new CpuMeter({
  gateway: async () => gateways.map((gateway) => gateway.child.pid!),
  worker: async () => [worker.child.pid!],
  redis: async () => (env.redisPid ? [env.redisPid] : []),
  postgres: () => postgresBackendPids(pgAdmin, env.id),
  trainer: async () => (trainer ? [trainer.child.pid!] : []),
});

/**
 * Redis commands per event by command (calls and server microseconds, from INFO commandstats of this run's
 * own redis-server after a CONFIG RESETSTAT at the phase's start; commands run inside Lua scripts count too,
 * and the script call itself counts as evalsha), largest first.
 */
async function redisCommandsPerEvent(events: number) {
  const info = await redis.info('commandstats');
  const rows = [...info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)].map(([, command, calls, usec]) => ({
    command: command as string,
    callsPerEvent: round(Number(calls) / Math.max(1, events), 2),
    usecPerEvent: round(Number(usec) / Math.max(1, events), 1),
  }));
  return rows.sort((a, b) => b.usecPerEvent - a.usecPerEvent);
}

/**
 * CPU milliseconds per event of each role over a phase of `events` events; `total` sums the serving path
 * (gateway, worker, Redis, Postgres) and leaves out the trainer, which works on its own schedule.
 */
function perEvent(seconds: Record<string, number>, events: number) {
  const ms = (role: string) => round(((seconds[role] ?? 0) * 1000) / Math.max(1, events), 3);
  const total = ms('gateway') + ms('worker') + ms('redis') + ms('postgres');
  return {
    gateway: ms('gateway'),
    worker: ms('worker'),
    redis: ms('redis'),
    postgres: ms('postgres'),
    total: round(total, 3),
    trainer: ms('trainer'),
  };
}
const [urlA, urlB] = urls as [string, string];
const redis = new Redis(env.redisUrl);
const eventsQueue = createEventsQueue(redis, env.id);
const pushes = new PushCounter();
const shoppers = new ShopperLoad({ urls, shoppers: SUBSCRIBERS, items: ITEMS, pushes });
const cleanups: (() => Promise<void>)[] = [];

/** Batches handed to the workers and not finished yet: BullMQ jobs and live stream entries. */
async function queueBacklog(): Promise<number> {
  const counts = await eventsQueue.getJobCounts('wait', 'active', 'prioritized', 'delayed');
  const jobs = Object.values(counts).reduce((sum, count) => sum + count, 0);
  return jobs + (await LiveEventsReader.backlog(redis, env.id));
}

/** Lets a backlog an earlier phase left behind clear before the next phase starts (at most `ms`). */
/** A gateway's lists waiting for a paced fan-out and the rate its pacer allows, as its `/metrics` reports them. */
async function fanoutState(url: string): Promise<{ waiting: number; rate: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => {
    const line = text.split('\n').find((row) => row.startsWith(`${name} `));
    if (!line) throw new Error(`${url}/metrics has no ${name}`);
    return Number(line.split(' ')[1]);
  };
  return { waiting: read('pgw_fanout_waiting_lists'), rate: read('pgw_fanout_rate') };
}

async function waitForEmptyQueue(ms = 60_000) {
  const until = performance.now() + ms;
  while ((await queueBacklog()) > 0 && performance.now() < until) await sleep(200);
}

interface ModelVersionRow {
  id: number;
  status: string;
  current: boolean;
  createdAt: string;
  finishedAt: string | null;
}

async function modelVersions(url: string): Promise<ModelVersionRow[]> {
  const data = (await postAdmin(url, '{ modelVersions(first: 20) { id status current createdAt finishedAt } }')) as {
    modelVersions: ModelVersionRow[];
  };
  return data.modelVersions;
}

/** Until the gateway at `url` serves `versionId` (at most 60 s). */
async function untilServing(url: string, versionId: number) {
  const until = performance.now() + 60_000;
  while (performance.now() < until) {
    if ((await modelVersions(url)).some((version) => version.id === versionId && version.current)) return;
    await sleep(50);
  }
  throw new Error(`${url} does not serve model version ${versionId} after 60 s`);
}

/** Neighbours per item of the --item-to-item table. */
const TABLE_NEIGHBOURS = 100;

/**
 * Stores and activates an item-to-item version made from a trained one: its vectors and index, plus a table
 * of each item's TABLE_NEIGHBOURS nearest by cosine of the item vectors; returns when both gateways serve it.
 */
async function serveItemToItem(trainedId: number): Promise<number> {
  const db = createDb(env.databaseUrl, { poolSize: 2, onError: (error) => console.error(error.message) });
  try {
    const vectors = await loadModelVectors(db, trainedId);
    if (!vectors) throw new Error(`model version ${trainedId} has no artifact`);
    const { factors: f, itemFactors, itemIds } = vectors;
    const norms = Float32Array.from(itemIds, (_, i) => {
      let sum = 0;
      for (let k = i * f; k < (i + 1) * f; k++) sum += (itemFactors[k] as number) ** 2;
      return Math.sqrt(sum) || 1;
    });
    const neighbours = neighbourTableFromRows(itemIds.length, TABLE_NEIGHBOURS, (i, out) => {
      for (let j = 0; j < itemIds.length; j++) {
        let dot = 0;
        for (let k = 0; k < f; k++) dot += (itemFactors[i * f + k] as number) * (itemFactors[j * f + k] as number);
        out[j] = dot / ((norms[i] as number) * (norms[j] as number));
      }
    });
    const version = await createModelVersion(db, 'item-to-item', {
      bench: `top ${TABLE_NEIGHBOURS} by cosine of version ${trainedId}'s item vectors`,
      historyWeighting: 'binary',
    });
    await completeModelVersion(db, version.id, { items: itemIds.length }, { ...vectors, neighbours }, true);
    const subscriber = new Redis(env.redisUrl);
    await new PubSub({ publisher: redis, subscriber, prefix: env.id }).publishModelActivated({ versionId: version.id });
    subscriber.disconnect();
    await Promise.all(urls.map((url) => untilServing(url, version.id)));
    return version.id;
  } finally {
    await db.$disconnect();
  }
}

/**
 * A retrain while the load runs, with the tuned parameters as the schedule would use them: returns the
 * training window, from the request to the new version serving on both gateways and its MODEL pushes over.
 */
async function retrainWhileServing() {
  // The process that trains: the trainer once it is one of its own, the worker until then.
  const trainingPid = (trainer ?? worker).child.pid!;
  const cpuBefore = cpuSeconds(trainingPid);
  const startedAt = performance.now();
  const data = (await postAdmin(
    urlA,
    'mutation { retrainModel(wait: true) { version { id createdAt finishedAt } } }',
  )) as {
    retrainModel: { version: { id: number; createdAt: string; finishedAt: string } | null };
  };
  const version = data.retrainModel.version;
  if (!version) throw new Error('retrainModel(wait: true) answered without a version');
  const answeredAt = performance.now();
  await untilServing(urlB, version.id);
  const servingAt = performance.now();
  const quietBy = servingAt + 10_000;
  while (performance.now() < quietBy && performance.now() - Math.max(servingAt, pushes.lastAt('MODEL')) < 500) {
    await sleep(50);
  }
  const endedAt = performance.now();
  return {
    versionId: version.id,
    trainingProcess: trainer ? 'trainer' : 'worker',
    trainingProcessCpuSeconds: cpuSeconds(trainingPid) - cpuBefore,
    startedAt,
    endedAt,
    /** The version's own training time, as the trainer stored it (createdAt → finishedAt). */
    trainingMs: Date.parse(version.finishedAt) - Date.parse(version.createdAt),
    requestMs: answeredAt - startedAt,
    servingOnBothMs: servingAt - startedAt,
    windowMs: endedAt - startedAt,
  };
}

/** Runs `seconds` of load at `rate`, waits for its pushes, and sums it up. */
async function runStep(rate: number, seconds: number) {
  await waitForEmptyQueue();
  const first = shoppers.events.length;
  const pushed = pushes.snapshot();
  const backlog = sampleMax(queueBacklog);
  const meter = await cpu.start();
  const stats = await shoppers.run(rate, seconds);
  const events = shoppers.events.slice(first);
  const drainStarted = performance.now();
  await shoppers.drain(events, DRAIN_MS);
  const drainMs = performance.now() - drainStarted;
  const cpuMsPerEvent = perEvent(await meter.stop(), events.length);
  return {
    stats,
    events,
    drainMs,
    cpuMsPerEvent,
    maxQueueBacklog: await backlog.stop(),
    pushesByTrigger: pushes.since(pushed),
  };
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

try {
  const items = Array.from({ length: ITEMS }, (_, i) => ({ id: `i${i}`, name: `Item ${i}`, price: 5 }));
  for (let start = 0; start < ITEMS; start += 1000) {
    await post(urlA, 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }', {
      items: items.slice(start, start + 1000),
    });
  }
  // Seed: every subscriber (and as many other shoppers) bought a few items of one taste; then train.
  const seed: { userId: string; type: string; itemId: string }[] = [];
  for (let user = 0; user < 2 * SUBSCRIBERS; user++) {
    const taste = user % TASTES;
    for (let n = 0; n < SEED_PURCHASES_PER_SHOPPER; n++) {
      const item = taste + TASTES * Math.floor(Math.random() * (ITEMS / TASTES));
      seed.push({ userId: `u${user}`, type: 'PURCHASE', itemId: `i${item}` });
    }
  }
  for (let start = 0; start < seed.length; start += 1000) {
    await postAdminWhenAccepted(urlA, 'mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }', {
      inputs: seed.slice(start, start + 1000),
    });
  }
  const trained = (await post(
    urlA,
    'mutation { retrainModel(wait: true, params: { factors: 32 }) { version { id events } } }',
  )) as { retrainModel: { version: { id: number; events: number } } };
  console.error(
    `model version ${trained.retrainModel.version.id} trained on ${trained.retrainModel.version.events} events`,
  );
  const servedVersion = values['item-to-item']
    ? await serveItemToItem(trained.retrainModel.version.id)
    : trained.retrainModel.version.id;
  if (values['item-to-item']) console.error(`serving item-to-item version ${servedVersion}`);

  // Memory per idle subscriber, on a gateway of its own that is measured after forced full GCs.
  const idleMemory = values.memory
    ? await measureIdleSubscriberBytes({
        databaseUrl: env.databaseUrl,
        redisUrl: env.redisUrl,
        prefix: env.id,
        subscribers: SUBSCRIBERS,
        query: WATCH,
        userIdPrefix: 'idle-',
      })
    : undefined;
  if (idleMemory) {
    console.error(`idle subscriber: ${(idleMemory.bytesPerSubscriber / 1024).toFixed(1)} KB (${idleMemory.method})`);
  }

  // The trivial query's ceiling on gateway A, before any subscriber: the yardstick for every rate below.
  const ceiling = await trivialQueryCeiling(
    urlA,
    Number(values['ceiling-seconds']),
    Number(values['ceiling-connections']),
  );
  const ceilingRps = ceiling.requestsPerSecond;
  const rate = values.rate === undefined ? RATE_FRACTION * ceilingRps : Number(values.rate);
  console.error(`ceiling ${ceilingRps.toFixed(0)} req/s; main rate ${rate.toFixed(0)} events/s`);

  cleanups.push(() => shoppers.dispose());
  await shoppers.subscribe();
  console.error(`${SUBSCRIBERS} subscribers ready`);

  // Capacity: short steps at rising fractions of the ceiling, until one misses the target.
  const capacitySteps: Record<string, unknown>[] = [];
  let capacityFraction: number | null = null;
  let aboveCapacity: Record<string, unknown> | null = null;
  if (values.capacity) {
    capacityFraction = 0;
    for (const fraction of FRACTIONS) {
      console.error(`capacity step: ${fraction} × ceiling = ${(fraction * ceilingRps).toFixed(0)} events/s`);
      const step = await runStep(fraction * ceilingRps, STEP_SECONDS);
      const summary = summarize(step.events);
      const passed = summary.p99Ms <= P99_TARGET_MS && summary.lostPushes === 0 && summary.failedRequests === 0;
      const figures = {
        fraction,
        askedEventsPerSecond: step.stats.askedEventsPerSecond,
        eventsPerSecond: step.stats.eventsPerSecond,
        ...summary,
        eventPushes: step.pushesByTrigger.EVENT ?? 0,
        cpuMsPerEvent: step.cpuMsPerEvent,
        maxQueueBacklog: step.maxQueueBacklog,
        maxRequestsInFlight: step.stats.maxRequestsInFlight,
        drainMs: step.drainMs,
        passed,
      };
      capacitySteps.push(figures);
      console.error(
        `  p50 ${summary.p50Ms.toFixed(1)} ms, p99 ${summary.p99Ms.toFixed(1)} ms, lost ${summary.lostPushes}`,
      );
      if (!passed) {
        aboveCapacity = {
          ...figures,
          eventsPerEventPush: step.pushesByTrigger.EVENT ? summary.events / step.pushesByTrigger.EVENT : null,
          behaviour:
            'what the product does above capacity (from the code; the figures beside it measure it): no ' +
            'shedding and no back-pressure on the sender, since trackEvent answers once the event is stored, ' +
            'so the events queue (maxQueueBacklog) and the requests in flight (maxRequestsInFlight) grow, and ' +
            'latency with them; the work stays bounded by coalescing per shopper: the worker announces a ' +
            'shopper once per job, naming the latest event, and a gateway folds the changes that arrive while ' +
            'a list is recomputed into one recomputation, so events are superseded instead of pushed one by ' +
            'one (superseded, eventsPerEventPush); pushes later than the drain count as lost',
        };
        break;
      }
      capacityFraction = fraction;
    }
  }

  // Main run at `rate`, with a retrain started TRAIN_AT of the way in.
  await waitForEmptyQueue();
  console.error(`main run: ${rate.toFixed(0)} events/s for ${SECONDS} s${values.training ? ', retrain mid-run' : ''}`);
  const mainFirst = shoppers.events.length;
  const mainPushed = pushes.snapshot();
  const mainBacklog = sampleMax(queueBacklog);
  const mainMeter = await cpu.start();
  const profiler = PROFILE_DIR
    ? await WindowProfiler.attach(
        ['worker', 'gateway-a', 'gateway-b'].map((name, n) => ({ name, inspectPort: inspectPorts[n] as number })),
      )
    : undefined;
  await profiler?.start();
  await redis.config('RESETSTAT');
  const mainStartedAt = performance.now();
  const load = shoppers.start(rate);
  let training: Awaited<ReturnType<typeof retrainWhileServing>> | undefined;
  if (values.training) {
    await sleep(TRAIN_AT * SECONDS * 1000);
    training = await retrainWhileServing();
    console.error(`retrain: version ${training.versionId}, window ${(training.windowMs / 1000).toFixed(1)} s`);
  }
  await sleep(Math.max(0, SECONDS * 1000 - (performance.now() - mainStartedAt)));
  const mainStats: LoadStats = await load.stop();
  const mainEvents = shoppers.events.slice(mainFirst);
  await shoppers.drain(mainEvents, DRAIN_MS);
  const mainCpuMsPerEvent = perEvent(await mainMeter.stop(), mainEvents.length);
  if (profiler && PROFILE_DIR) {
    console.error(`main run profiles: ${(await profiler.stop(PROFILE_DIR)).join(', ')}`);
    profiler.close();
  }
  const mainRedisCommands = await redisCommandsPerEvent(mainEvents.length);
  console.error(`main run: ${JSON.stringify(mainCpuMsPerEvent)} CPU ms per event`);
  const mainMaxBacklog = await mainBacklog.stop();
  const mainPushes = pushes.since(mainPushed);
  const main = summarize(mainEvents);
  const inTraining = (event: SentEvent) =>
    training !== undefined && event.sentAt >= training.startedAt && event.sentAt < training.endedAt;
  const duringTraining = training ? summarize(mainEvents.filter(inTraining)) : undefined;
  const outsideTraining = training ? summarize(mainEvents.filter((event) => !inTraining(event))) : undefined;
  // The training window in two: while the trainer works (until retrainModel answers), and the activation after
  // (both gateways loading the version, its MODEL pushes), so a miss says which of them costs the latency.
  const trainingPhases = training && {
    fitting: summarize(
      mainEvents.filter((event) => inTraining(event) && event.sentAt < training.startedAt + training.requestMs),
    ),
    activation: summarize(
      mainEvents.filter((event) => inTraining(event) && event.sentAt >= training.startedAt + training.requestMs),
    ),
  };

  // Fan-out: many open subscriptions, the shopper stream at `rate`, then a catalogue change and a model
  // activation, each with the CPU, pushes and freshness of the window after it.
  let fanOut: Record<string, unknown> | undefined;
  let subscribers10k: Record<string, unknown> | undefined;
  if (values.fanout) {
    await waitForEmptyQueue();
    console.error(`fan-out: opening ${EXTRA_SUBSCRIPTIONS} more subscriptions over ${FANOUT_CONNECTIONS} connections`);
    const opened = performance.now();
    const multiplexed = await openMultiplexedSubscriptions({
      urls,
      count: EXTRA_SUBSCRIPTIONS,
      connections: FANOUT_CONNECTIONS,
      // Seeded shoppers (model-ranked lists) who send no events, several subscriptions each (tabs, devices):
      // the shopper stream then costs what it cost in the main run, and only the triggers fan out.
      firstUser: SUBSCRIBERS,
      users: SUBSCRIBERS,
      pushes,
    });
    cleanups.push(() => multiplexed.dispose());
    const openMs = performance.now() - opened;
    const pids = gateways.map((gateway) => gateway.child.pid!);
    const streamFirst = shoppers.events.length;
    const stream = shoppers.start(rate);
    await sleep(3000);

    const measureWindow = async (trigger: string | null, act: () => Promise<Record<string, unknown>>) => {
      const cpuBefore = pids.map(cpuSeconds);
      const workerCpuBefore = cpuSeconds(worker.child.pid!);
      const pushed = pushes.snapshot();
      const from = performance.now();
      const acted = await act();
      const answered = performance.now();
      await sleep(Math.max(0, answered + FANOUT_WINDOW_MS - performance.now()));
      // Longer while the trigger's pushes still arrive: a fan-out paced by the gateways' load may take minutes
      // (10,000 lists at the FANOUT_MIN_RATE floor of 25/s per gateway: 200 s), and its cost is the window's.
      let reportedAt = performance.now();
      // A gap of a second between pushes (a GC pause, a busy spell at the floor rate) does not end a fan-out
      // whose lists still wait: the gateways' metrics say when it is done.
      const waitingNow = async () => (await Promise.all(urls.map(fanoutState))).some(({ waiting }) => waiting > 0);
      let stillWaiting = trigger !== null && (await waitingNow());
      while (
        trigger &&
        (performance.now() - pushes.lastAt(trigger) < 1000 || stillWaiting) &&
        performance.now() - answered < FANOUT_MAX_WAIT_MS
      ) {
        await sleep(100);
        if (performance.now() - reportedAt < 5000) continue;
        reportedAt = performance.now();
        const states = await Promise.all(urls.map(fanoutState));
        stillWaiting = states.some(({ waiting }) => waiting > 0);
        const lists = states.map(({ waiting, rate }) => `${waiting} waiting at ${rate}/s`).join(', ');
        console.error(`fan-out: ${pushes.since(pushed)[trigger] ?? 0} ${trigger} pushes so far; ${lists}`);
      }
      const to = performance.now();
      const states = await Promise.all(urls.map(fanoutState));
      const cpuEach = pids.map((pid, i) => cpuSeconds(pid) - cpuBefore[i]!);
      const lastPush = trigger ? pushes.lastAt(trigger) : Number.NEGATIVE_INFINITY;
      return {
        from,
        to,
        figures: {
          ...acted,
          requestMs: answered - from,
          windowSeconds: (to - from) / 1000,
          gatewayCpuSeconds: round(
            cpuEach.reduce((sum, seconds) => sum + seconds, 0),
            2,
          ),
          gatewayCpuSecondsEach: cpuEach.map((seconds) => round(seconds, 2)),
          workerCpuSeconds: round(cpuSeconds(worker.child.pid!) - workerCpuBefore, 2),
          pushesByTrigger: pushes.since(pushed),
          lastPushAfterMs: trigger && lastPush > from ? lastPush - from : null,
          // Its last push after the trigger's request answered (a retrain's answer comes after the fit).
          lastPushAfterAnswerMs: trigger && lastPush > answered ? lastPush - answered : null,
          listsWaitingAtEnd: states.reduce((sum, { waiting }) => sum + waiting, 0),
        },
      };
    };

    console.error('fan-out: quiet window (the shopper stream only)');
    const quiet = await measureWindow(null, async () => ({}));
    console.error('fan-out: upsertItems of one item');
    const counts = new Map<string, number>();
    for (const list of multiplexed.lists) for (const id of list) counts.set(id, (counts.get(id) ?? 0) + 1);
    const [itemId, onLists] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? ['i0', 0];
    const upsert = await measureWindow('CATALOG', async () => {
      await postAdmin(urlA, 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }', {
        items: [{ id: itemId, name: `Item ${itemId.slice(1)}`, price: 6, inStock: true }],
      });
      return { itemId, change: 'price 5 → 6, in stock', listsShowingItem: onLists };
    });
    console.error('fan-out: model activation');
    const activation = await measureWindow('MODEL', async () => {
      const versions = await modelVersions(urlA);
      const other = versions.find((version) => version.status === 'READY' && !version.current);
      if (other) {
        await postAdmin(urlA, 'mutation($versionId: Int!) { rollbackModel(versionId: $versionId) { id } }', {
          versionId: other.id,
        });
        return { how: `rollbackModel to READY version ${other.id}` };
      }
      const data = (await postAdmin(urlA, 'mutation { retrainModel(wait: true) { version { id } } }')) as {
        retrainModel: { version: { id: number } | null };
      };
      return { how: `retrainModel (no other READY version), version ${data.retrainModel.version?.id}` };
    });
    await stream.stop();
    const streamEvents = shoppers.events.slice(streamFirst);
    await shoppers.drain(streamEvents, DRAIN_MS);
    const windowFigures = (window: typeof quiet) => ({
      ...window.figures,
      freshness: summarize(sentBetween(streamEvents, window.from, window.to)),
    });
    subscribers10k = {
      what: 'the shopper stream at `rate` with --fanout-subscriptions open, in the quiet fan-out window (no catalogue or model change)',
      subscriptions: SUBSCRIBERS + EXTRA_SUBSCRIPTIONS,
      rate,
      ...summarize(sentBetween(streamEvents, quiet.from, quiet.to)),
    };
    fanOut = {
      subscriptions: SUBSCRIBERS + EXTRA_SUBSCRIPTIONS,
      shopperSubscriptions: SUBSCRIBERS,
      multiplexedSubscriptions: EXTRA_SUBSCRIPTIONS,
      connections: FANOUT_CONNECTIONS,
      maxSubscriptionsPerConnection: PER_CONNECTION,
      openSeconds: openMs / 1000,
      eventsPerSecond: rate,
      ...multiplexed.failures(),
      quiet: windowFigures(quiet),
      upsertItem: windowFigures(upsert),
      modelActivation: windowFigures(activation),
    };
  }

  // Baseline: a storefront polling once a second sees an event when its next poll lands after processing.
  const staleness: number[] = [];
  if (values.polling) {
    const pollOnce = async (sample: number) => {
      const user = 2 * SUBSCRIBERS + sample; // fresh shoppers, no subscription
      const query = `query($userId: ID!) { recommendations(userId: $userId, k: 10) { items { item { id } } } }`;
      const read = async () =>
        (
          (await post(urlB, query, { userId: `u${user}` })) as {
            recommendations: { items: { item: { id: string } }[] };
          }
        ).recommendations.items;
      // Buying the top item must take it off the list: the change the poller waits to see.
      const item = (await read())[0]!.item.id;
      const phase = Math.random() * 1000;
      const sentAt = performance.now();
      await post(urlA, 'mutation($input: EventInput!) { trackEvent(input: $input) { status } }', {
        input: { userId: `u${user}`, type: 'PURCHASE', itemId: item },
      });
      await sleep(phase);
      while ((await read()).some((r) => r.item.id === item)) await sleep(1000);
      staleness.push(performance.now() - sentAt);
    };
    for (let sample = 0; sample < POLL_SAMPLES; sample += POLL_CONCURRENCY) {
      await Promise.all(Array.from({ length: POLL_CONCURRENCY }, (_, i) => pollOnce(sample + i)));
    }
  }
  staleness.sort((a, b) => a - b);

  writeResults(values.out, {
    setup:
      'two gateway processes and one worker process on this machine; a model trained on seeded purchases; each event the purchase of an item on the shopper’s list, sent to the gateway the shopper is not subscribed on',
    trainerProcess: trainer !== undefined,
    loadAverage: {
      what: '1, 5 and 15 minute load averages, as uptime shows them',
      start: loadAtStart,
      end: loadAverage(),
    },
    flags: values,
    benchSeconds: (performance.now() - benchStartedAt) / 1000,
    modelVersion: servedVersion,
    servedModel: values['item-to-item'] ? `item-to-item (${TABLE_NEIGHBOURS} neighbours per item)` : 'als',
    ceilingRps,
    ceiling,
    rate,
    rateFraction: rate / ceilingRps,
    capacityFraction,
    capacitySteps,
    aboveCapacity,
    pushesByStrategy: Object.fromEntries(shoppers.strategies),
    subscribers: SUBSCRIBERS,
    seconds: SECONDS,
    eventsPerSecond: mainStats.eventsPerSecond,
    events: mainStats.events,
    failedRequests: main.failedRequests,
    pushes: Object.values(mainPushes).reduce((sum, count) => sum + count, 0),
    pushesByTrigger: mainPushes,
    p50Ms: main.p50Ms,
    p90Ms: main.p90Ms,
    p99Ms: main.p99Ms,
    maxMs: main.maxMs,
    answeredDirectly: main.answeredDirectly,
    superseded: main.superseded,
    stagesMs: summarizeStages(mainEvents),
    cpuMsPerEvent: mainCpuMsPerEvent,
    redisCommandsPerEvent: mainRedisCommands,
    cpuMsPerEventWhat:
      'CPU milliseconds (utime + stime from /proc/<pid>/stat) per event sent in the main run, from its start to the end of its drain: both gateways, the worker, this run’s own redis-server, and the Postgres backends connected to its database (the server’s shared background processes, e.g. the WAL writer, are not counted); total sums those four; the trainer is reported apart, and the main run includes the retrain unless --no-training',
    lostPushes: main.lostPushes,
    shownByOtherPush: main.shownByOtherPush,
    requestErrors: Object.fromEntries(shoppers.requestErrors),
    maxQueueBacklog: mainMaxBacklog,
    maxRequestsInFlight: mainStats.maxRequestsInFlight,
    // A skipped phase leaves its keys null, so the document has the same shape whatever ran.
    training: training
      ? {
          versionId: training.versionId,
          process: training.trainingProcess,
          processCpuSeconds: round(training.trainingProcessCpuSeconds, 2),
          durationMs: training.trainingMs,
          requestMs: training.requestMs,
          servingOnBothMs: training.servingOnBothMs,
          windowMs: training.windowMs,
          startedAfterSeconds: (training.startedAt - mainStartedAt) / 1000,
        }
      : null,
    duringTraining: duringTraining ?? null,
    trainingPhases: trainingPhases ?? null,
    outsideTraining: outsideTraining ?? null,
    trainingP99Ratio: duringTraining && outsideTraining ? duringTraining.p99Ms / outsideTraining.p99Ms : null,
    fanOut: fanOut ?? null,
    subscribers10k: subscribers10k ?? null,
    // The V8 heap's growth, as `memory` reports it: the RSS difference (idleSubscriberMemory.bytesPerSubscriber)
    // keeps the pages the warm-up round freed resident and can read below zero.
    bytesPerIdleSubscriber: idleMemory?.heapBytesPerSubscriber ?? null,
    idleSubscriberMemory: idleMemory ?? null,
    workerRssMb: rssBytes(worker.child.pid!) / 2 ** 20,
    baseline: {
      what: 'polling recommendations once a second (random phase); time from trackEvent to the first poll showing the change',
      samples: staleness.length,
      p50Ms: percentile(staleness, 50),
      p99Ms: percentile(staleness, 99),
    },
    targets: {
      p50MsAtMost: 10,
      p99MsAtMost: P99_TARGET_MS,
      lostPushes: 0,
      rateFractionOfCeiling: 0.2,
      duringTrainingP99AtMostTimesOutside: 1.5,
      fanOutFreshnessP99MsAtMost: P99_TARGET_MS,
    },
  });
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  closeHttp();
  await eventsQueue.close();
  redis.disconnect();
  await Promise.all([...gateways, worker, ...(trainer ? [trainer] : [])].map((process) => process.stop()));
  await pgAdmin.end();
  await env.drop();
}
