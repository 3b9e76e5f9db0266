// npm run bench -- serving [--items 100000] [--shoppers 100000] [--categories 100] [--events-per-shopper 5]
//   [--seconds 10] [--connections 32] [--rate-seconds 10] [--k 10] [--plain-only] [--experiment]
//
// What serving with merchandising rules costs, through the real gateway (its own process, beside a worker and
// the trainer), on a synthetic catalogue (categories, prices, a brand attribute) with a model trained by the
// trainer on the shoppers' seeded purchase histories (taste groups, so the model has structure), in one run:
// - ceilingRps: a trivial query's (`{ __typename }`) closed-loop ceiling, autocannon with --connections;
// - plainRps: `recommendations(userId, k)` for random known shoppers, no rules, closed loop the same way;
// - rulesRps: the same with `placement: "bench-home"`, a typical placement: a category filter keeping about
//   10 % of the catalogue, two boosts, maxPerCategory 2 and excludeSeenWithinHours 24;
// - rulesAtHalfCeiling: the placement's latency at a fixed open-loop rate of half ceilingRps, from an evenly
//   paced client (one request every 1/rate s; latency from the scheduled send time, so a stall is counted, not
//   hidden), for --rate-seconds.
// With --experiment, instead of the rules figures: plain recommendations without and then with an A/A
// experiment on every list (assignment, a signed recommendationId and a count in the impression log per list),
// in two alternating rounds: closed loop (gateway CPU ms per request) and open loop at half of what plain
// recommendations sustain closed-loop (p99), to bench/results/serving-experiment.json.
// Machines differ by 2-3x and more: the targets are ratios (rulesRps ≥ 50 % of ceilingRps; p99 ≤ 10 ms at
// half the ceiling). loadAverage and uptime say how busy the machine was.
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { closeHttp, postAdmin, postAdminWhenAccepted, trivialQueryCeiling } from './lib/graphql-http.ts';
import { cpuSeconds } from './lib/process-cpu.ts';
import { percentile, writeResults } from './lib/results.ts';
import { createBenchEnvironment, freePort, startProcess } from './lib/services.ts';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '100000' },
    shoppers: { type: 'string', default: '100000' },
    categories: { type: 'string', default: '100' },
    'events-per-shopper': { type: 'string', default: '5' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'rate-seconds': { type: 'string', default: '10' },
    k: { type: 'string', default: '10' },
    /** Only the ceiling and plain recommendations (to compare the no-rules path with an older commit's). */
    'plain-only': { type: 'boolean', default: false },
    /** Plain serving without and with an experiment running, in one run (see above). */
    experiment: { type: 'boolean', default: false },
  },
});
const PLAIN_ONLY = values['plain-only'];
const EXPERIMENT = values.experiment;
const ITEMS = Number(values.items);
const SHOPPERS = Number(values.shoppers);
const CATEGORIES = Number(values.categories);
const EVENTS_PER_SHOPPER = Number(values['events-per-shopper']);
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const RATE_SECONDS = Number(values['rate-seconds']);
const K = Number(values.k);
/** Categories per taste group: a shopper's purchases stay within their group's categories. */
const CATEGORIES_PER_TASTE = 5;
const BRANDS = ['acme', 'globex', 'initech', 'umbrella', 'hooli'];
const EVENT_BATCH = 1000;
const HOUR = 3600_000;

/** A seeded generator (mulberry32), so every run sees the same catalogue and histories. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(2026);
const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const loadAverage = () => os.loadavg().map((load) => Math.round(load * 100) / 100);
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();

const categoryOf = (index: number) => `c${index % CATEGORIES}`;
const itemsByCategory = new Map<string, string[]>();
for (let i = 0; i < ITEMS; i++) {
  const category = categoryOf(i);
  const members = itemsByCategory.get(category) ?? [];
  members.push(`i${i}`);
  itemsByCategory.set(category, members);
}

/** The catalogue, written straight to Postgres before the gateway starts (it mirrors it at start). */
async function insertCatalogue(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (let start = 0; start < ITEMS; start += 10_000) {
      const ids: string[] = [];
      const categories: string[] = [];
      const prices: string[] = [];
      const attributes: string[] = [];
      for (let i = start; i < Math.min(ITEMS, start + 10_000); i++) {
        ids.push(`i${i}`);
        categories.push(categoryOf(i));
        prices.push((5 + random() * 195).toFixed(2));
        attributes.push(JSON.stringify({ brand: pick(BRANDS) }));
      }
      await client.query(
        `INSERT INTO "Item" ("id", "name", "category", "price", "currency", "attributes")
         SELECT id, 'Item ' || id, category, price, 'EUR', attributes
         FROM UNNEST($1::text[], $2::text[], $3::numeric[], $4::jsonb[]) AS t(id, category, price, attributes)`,
        [ids, categories, prices, attributes],
      );
    }
  } finally {
    await client.end();
  }
}

/** Each shopper's history: purchases and views within their taste group's categories, some in the last day. */
async function sendHistories(url: string) {
  const tastes = Math.max(1, Math.floor(CATEGORIES / CATEGORIES_PER_TASTE));
  let batch: Record<string, unknown>[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await postAdminWhenAccepted(url, 'mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }', {
      inputs: batch,
    });
    batch = [];
  };
  const now = Date.now();
  for (let s = 0; s < SHOPPERS; s++) {
    const taste = s % tastes;
    for (let e = 0; e < EVENTS_PER_SHOPPER; e++) {
      const category = `c${taste * CATEGORIES_PER_TASTE + Math.floor(random() * CATEGORIES_PER_TASTE)}`;
      const members = itemsByCategory.get(category) ?? [];
      batch.push({
        userId: `s${s}`,
        type: e < 2 ? 'VIEW' : 'PURCHASE',
        itemId: pick(members),
        sessionId: `s${s}-session`,
        occurredAt: new Date(now - (e < 2 ? random() * 20 : 30 + random() * 200) * HOUR).toISOString(),
      });
      if (batch.length === EVENT_BATCH) await flush();
    }
  }
  await flush();
}

/** One count from Postgres. */
async function countRows(databaseUrl: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: string }>(sql);
    return Number(rows[0]?.count);
  } finally {
    await client.end();
  }
}

/** Until the worker processed every event (at most `deadlineMs`: a worker that died would leave it waiting). */
async function untilProcessed(databaseUrl: string, deadlineMs = 30 * 60_000) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const until = performance.now() + deadlineMs;
  try {
    for (;;) {
      if (performance.now() > until) throw new Error(`events still unprocessed after ${deadlineMs / 1000} s`);
      const { rows } = await client.query<{ count: string }>(
        'SELECT count(*) FROM "Event" WHERE "processedAt" IS NULL',
      );
      if (Number(rows[0]?.count) === 0) return;
      await sleep(500);
    }
  } finally {
    await client.end();
  }
}

const RECOMMEND = 'query($u: ID!, $k: Int) { recommendations(userId: $u, k: $k) { items { item { id } } } }';
const RECOMMEND_PLACED =
  'query($u: ID!, $k: Int) { recommendations(userId: $u, k: $k, placement: "bench-home") { items { item { id } } } }';
const RECOMMEND_EXPERIMENT =
  'query($u: ID!, $k: Int) { recommendations(userId: $u, k: $k) { experiment { id variant } items { item { id } } } }';
const bodyOf = (query: string) => () =>
  JSON.stringify({ query, variables: { u: `s${Math.floor(random() * SHOPPERS)}`, k: K } });

/** Runs `load` and returns its figures with the gateway's CPU milliseconds per request (less load-sensitive). */
async function withCpu<T extends { requestsPerSecond: number }>(pid: number, seconds: number, load: () => Promise<T>) {
  const before = cpuSeconds(pid);
  const figures = await load();
  const requests = figures.requestsPerSecond * seconds;
  return { ...figures, gatewayCpuMsPerRequest: Math.round(((cpuSeconds(pid) - before) * 1e5) / requests) / 100 };
}

/** Rounds of the --experiment comparison, each one arm without the experiment and one with it. */
const EXPERIMENT_ROUNDS = 2;

interface ArmFigures {
  closed: Awaited<ReturnType<typeof closedLoop>> & { gatewayCpuMsPerRequest: number };
  open: Awaited<ReturnType<typeof openLoop>>;
}

/** One arm of the --experiment comparison: plain recommendations closed-loop (with gateway CPU), then open-loop at `rate`. */
async function arm(pid: number, url: string, rate: number): Promise<ArmFigures> {
  const closed = await withCpu(pid, SECONDS, () => closedLoop(url, bodyOf(RECOMMEND)));
  const open = await openLoop(url, bodyOf(RECOMMEND), rate, RATE_SECONDS);
  return { closed, open };
}

async function closedLoop(url: string, body: () => string) {
  const result = await autocannon({
    url: `${url}/graphql`,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: body() }),
      },
    ],
  });
  if (result.non2xx || result.errors) {
    throw new Error(`load run failed: ${result.non2xx} non-2xx, ${result.errors} errors`);
  }
  return { requestsPerSecond: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 };
}

/**
 * An evenly paced open loop: request n is due at start + n/rate; its latency counts from when it was due, so
 * a gateway (or client) stall shows in the figures instead of slowing the sender down.
 */
async function openLoop(url: string, body: () => string, rate: number, seconds: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const latencies: number[] = [];
  let failed = 0;
  const total = Math.floor(rate * seconds);
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  const send = (due: number) =>
    new Promise<void>((resolve) => {
      const payload = body();
      const request = http.request(
        `${url}/graphql`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (response.statusCode !== 200 || text.includes('"errors"')) failed++;
            else latencies.push(performance.now() - due);
            resolve();
          });
        },
      );
      request.on('error', () => {
        failed++;
        resolve();
      });
      request.end(payload);
    });
  for (let n = 0; n < total; n++) {
    const due = started + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    inFlight.push(send(due));
  }
  await Promise.all(inFlight);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    rate: Math.round(rate),
    seconds,
    sent: total,
    failed,
    achievedRate: Math.round(total / ((performance.now() - started) / 1000)),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    maxMs: round(latencies.at(-1) ?? Number.NaN),
  };
}

const uptimeAtStart = uptime();
const loadAtStart = loadAverage();
const env = await createBenchEnvironment('serving');
const shared = { ...env.roleEnv, MAX_BATCH_SIZE: String(EVENT_BATCH) };
const processes: { stop(): Promise<void> }[] = [];
try {
  const setupStarted = performance.now();
  await insertCatalogue(env.databaseUrl);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  processes.push(await startProcess('worker.ts', [], shared));
  processes.push(await startProcess('trainer.ts', [], shared));
  const gateway = await startProcess(
    'server.ts',
    ['--role=gateway'],
    { ...shared, PORT: String(port) },
    `${url}/ready`,
  );
  processes.push(gateway);
  const pid = gateway.child.pid ?? 0;
  await sendHistories(url);
  await untilProcessed(env.databaseUrl);
  const trained = (await postAdmin(
    url,
    'mutation { retrainModel(wait: true, waitSeconds: 3600) { version { id } } }',
  )) as {
    retrainModel: { version: { id: number } | null };
  };
  const versionId = trained.retrainModel.version?.id;
  if (versionId === undefined) throw new Error('retrainModel answered without a version');
  // A typical placement: ten categories of a hundred (about 10 % of the catalogue), two boosts, a cap, and no
  // item the shopper touched in the last day.
  const categories = Array.from({ length: Math.max(1, Math.round(CATEGORIES / 10)) }, (_, i) => `c${i * 10}`);
  if (EXPERIMENT) {
    const ceiling = await withCpu(pid, SECONDS, () => trivialQueryCeiling(url, SECONDS, CONNECTIONS));
    // Half of what plain recommendations sustain closed-loop: a rate both arms can serve, so p99 measures the
    // experiment's cost and not a queue (half the trivial ceiling is above what `recommendations` sustains).
    const probe = await closedLoop(url, bodyOf(RECOMMEND));
    const rate = Math.round(probe.requestsPerSecond / 2);
    // Arms alternate (without, with, without, with): drift over the run (caches warming, the machine's other
    // load) then falls on both arms instead of on whichever ran second.
    const rounds: { without: ArmFigures; withExperiment: ArmFigures }[] = [];
    for (let round = 1; round <= EXPERIMENT_ROUNDS; round++) {
      const without = await arm(pid, url, rate);
      const id = `bench-aa-${round}`;
      await postAdmin(url, 'mutation($input: ExperimentInput!) { upsertExperiment(input: $input) { id } }', {
        input: {
          id,
          variants: [
            { name: 'a', weight: 1 },
            { name: 'b', weight: 1 },
          ],
        },
      });
      const listed = (await postAdmin(url, RECOMMEND_EXPERIMENT, { u: 's1', k: K })) as {
        recommendations: { experiment: { id: string } | null };
      };
      if (listed.recommendations.experiment?.id !== id) throw new Error('the experiment does not serve');
      const withExperiment = await arm(pid, url, rate);
      await postAdmin(url, `mutation { stopExperiment(id: "${id}") { id } }`);
      rounds.push({ without, withExperiment });
    }
    const impressions = await countRows(
      env.databaseUrl,
      'SELECT coalesce(sum("lists"), 0) AS count FROM "ExperimentExposure"',
    );
    const round = (value: number) => Math.round(value * 1000) / 1000;
    const mean = (pick: (r: (typeof rounds)[number]) => number) =>
      rounds.reduce((sum, r) => sum + pick(r), 0) / rounds.length;
    const cpuWithout = mean((r) => r.without.closed.gatewayCpuMsPerRequest);
    const cpuWith = mean((r) => r.withExperiment.closed.gatewayCpuMsPerRequest);
    const openP99Without = mean((r) => r.without.open.p99Ms);
    const openP99With = mean((r) => r.withExperiment.open.p99Ms);
    const ratios = {
      rpsWithOverWithout: round(
        mean((r) => r.withExperiment.closed.requestsPerSecond) / mean((r) => r.without.closed.requestsPerSecond),
      ),
      openP99WithOverWithout: round(openP99With / openP99Without),
      cpuWithOverWithout: round(cpuWith / cpuWithout),
    };
    writeResults('serving-experiment', {
      sizes: { items: ITEMS, shoppers: SHOPPERS, categories: CATEGORIES, eventsPerShopper: EVENTS_PER_SHOPPER, k: K },
      ceilingRps: Math.round(ceiling.requestsPerSecond),
      plainClosedLoopRps: Math.round(probe.requestsPerSecond),
      openLoopRate: rate,
      openLoopRateWhat: 'half of plain recommendations closed-loop throughput, measured in this run',
      rounds,
      gatewayCpuMsPerRequest: { without: round(cpuWithout), withExperiment: round(cpuWith) },
      openLoopP99Ms: { without: round(openP99Without), withExperiment: round(openP99With) },
      ratios,
      impressionsLogged: impressions,
      targets: {
        openP99WithOverWithoutAtMost: 1.05,
        met: ratios.openP99WithOverWithout <= 1.05,
      },
      loadAverage: { atStart: loadAtStart, atEnd: loadAverage() },
      uptime: { atStart: uptimeAtStart, atEnd: uptime() },
    });
  } else if (PLAIN_ONLY) {
    const ceiling = await withCpu(pid, SECONDS, () => trivialQueryCeiling(url, SECONDS, CONNECTIONS));
    const plain = await withCpu(pid, SECONDS, () => closedLoop(url, bodyOf(RECOMMEND)));
    console.log(
      JSON.stringify({
        ceilingRps: Math.round(ceiling.requestsPerSecond),
        plainRps: Math.round(plain.requestsPerSecond),
        plainOfCeiling: Math.round((plain.requestsPerSecond / ceiling.requestsPerSecond) * 1000) / 1000,
        ceiling,
        plain,
        uptime: uptime(),
      }),
    );
    process.exitCode = 0;
  } else {
    await postAdmin(url, 'mutation($rules: RulesInput!) { upsertPlacement(id: "bench-home", rules: $rules) { id } }', {
      rules: {
        filter: { categories },
        boosts: [
          { filter: { attributes: { brand: 'acme' } }, factor: 1.5 },
          { filter: { priceMax: 20 }, factor: 0.7 },
        ],
        maxPerCategory: 2,
        excludeSeenWithinHours: 24,
      },
    });
    // Every shape of request answers k items before the load starts (a GraphQL error would still be a 200).
    for (const query of [RECOMMEND, RECOMMEND_PLACED]) {
      const data = (await postAdmin(url, query, { u: 's1', k: K })) as { recommendations: { items: unknown[] } };
      if (data.recommendations.items.length !== K)
        throw new Error(`${query} answered ${data.recommendations.items.length} items`);
    }
    // Where the placement's items come from, over a sample of shoppers: mostly the model, if the filter is
    // pushed into its search rather than left to the fallbacks.
    const sources: Record<string, number> = {};
    for (let n = 0; n < 50; n++) {
      const data = (await postAdmin(
        url,
        'query($u: ID!, $k: Int) { recommendations(userId: $u, k: $k, placement: "bench-home") { items { explanation { source } } } }',
        { u: `s${Math.floor(random() * SHOPPERS)}`, k: K },
      )) as { recommendations: { items: { explanation: { source: string } }[] } };
      for (const { explanation } of data.recommendations.items) {
        sources[explanation.source] = (sources[explanation.source] ?? 0) + 1;
      }
    }
    const setupSeconds = Math.round((performance.now() - setupStarted) / 1000);

    const ceiling = await withCpu(pid, SECONDS, () => trivialQueryCeiling(url, SECONDS, CONNECTIONS));
    const plain = await withCpu(pid, SECONDS, () => closedLoop(url, bodyOf(RECOMMEND)));
    const rules = await withCpu(pid, SECONDS, () => closedLoop(url, bodyOf(RECOMMEND_PLACED)));
    const rulesAtHalfCeiling = await openLoop(
      url,
      bodyOf(RECOMMEND_PLACED),
      ceiling.requestsPerSecond / 2,
      RATE_SECONDS,
    );
    const ratio = (rps: number) => Math.round((rps / ceiling.requestsPerSecond) * 1000) / 1000;

    writeResults('serving', {
      sizes: { items: ITEMS, shoppers: SHOPPERS, categories: CATEGORIES, eventsPerShopper: EVENTS_PER_SHOPPER, k: K },
      modelVersion: versionId,
      placement: { categories: categories.length, boosts: 2, maxPerCategory: 2, excludeSeenWithinHours: 24 },
      placementSourcesOver50Shoppers: sources,
      ceilingRps: Math.round(ceiling.requestsPerSecond),
      plainRps: Math.round(plain.requestsPerSecond),
      rulesRps: Math.round(rules.requestsPerSecond),
      plainOfCeiling: ratio(plain.requestsPerSecond),
      gatewayCpuMsPerRequest: {
        ceiling: ceiling.gatewayCpuMsPerRequest,
        plain: plain.gatewayCpuMsPerRequest,
        rules: rules.gatewayCpuMsPerRequest,
      },
      rulesOfCeiling: ratio(rules.requestsPerSecond),
      closedLoopLatency: { ceiling, plain, rules, connections: CONNECTIONS, seconds: SECONDS },
      rulesAtHalfCeiling,
      targets: {
        rulesOfCeilingAtLeast: 0.5,
        rulesP99AtHalfCeilingAtMostMs: 10,
        met: ratio(rules.requestsPerSecond) >= 0.5 && rulesAtHalfCeiling.p99Ms <= 10,
      },
      setupSeconds,
      loadAverage: { atStart: loadAtStart, atEnd: loadAverage() },
      uptime: { atStart: uptimeAtStart, atEnd: uptime() },
    });
  }
} finally {
  closeHttp();
  for (const process of processes.reverse()) await process.stop();
  await env.drop();
}
