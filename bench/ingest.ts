// npm run bench -- ingest [--seconds 10] [--concurrency 32] [--experiment [--attributed-share 1]]
// Events/s and latency of trackEvent (single) and trackEvents (batches of 100) through the real gateway,
// against two baselines measured in the same run: the same rows inserted by plain parameterised SQL from
// one pool, and a trivial GraphQL query on the same server (the HTTP+GraphQL ceiling).
// With --experiment: single and batched ingestion of the same storefront traffic, of which a share
// (--attributed-share, default all: the worst case) are clicks sending back the recommendationId of the list
// they came from: without an experiment that is a plain list's id (a UUID), with one a signed id of a variant's
// list; both are stored as sent, and the feature worker verifies and attributes them when it applies the event.
// The arms alternate over two rounds. The worker's share is measured apart: what attributing costs it per
// event (EventAttributor on the stored ids, signed against plain). To bench/results/ingest-experiment.json. The gateway runs without a worker (this measures ingestion alone),
// so MAX_EVENT_BACKLOG is off: back-pressure would answer OVERLOADED once 20,000 events wait, and autocannon
// would count those fast refusals as requests served.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { EventAttributor, RecommendationIds, recommendationIdKey } from '../src/services/experiment-ids.ts';
import { CpuMeter } from './lib/process-cpu.ts';
import { percentile, writeResults } from './lib/results.ts';
import {
  BENCH_SERVER_URL,
  createBenchEnvironment,
  freePort,
  postgresBackendPids,
  startProcess,
} from './lib/services.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '32' },
    experiment: { type: 'boolean', default: false },
    'attributed-share': { type: 'string', default: '1' },
  },
});
const ATTRIBUTED_SHARE = Number(values['attributed-share']);
const EXPERIMENT = values.experiment;
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const BATCH = 100;
const ITEMS = 5000;
const USERS = 50_000;

const randomEvent = () => ({
  eventId: randomUUID(),
  userId: `u${Math.floor(Math.random() * USERS)}`,
  type: 'VIEW',
  itemId: `i${Math.floor(Math.random() * ITEMS)}`,
});

async function load(url: string, body: () => string, duration = seconds) {
  const result = await autocannon({
    url: `${url}/graphql`,
    connections: concurrency,
    duration,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: body() }),
      },
    ],
  });
  if (result.non2xx || result.errors)
    throw new Error(`load run failed: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
  };
}

async function baseline(databaseUrl: string) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: concurrency });
  const latencies: number[] = [];
  const until = Date.now() + seconds * 1000;
  const sql = `INSERT INTO "Event" ("eventId", "userId", "type", "itemId", "occurredAt")
               VALUES ($1, $2, $3::"EventType", $4, now()) ON CONFLICT ("eventId") DO NOTHING`;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const event = randomEvent();
        const t0 = performance.now();
        await pool.query(sql, [event.eventId, event.userId, event.type, event.itemId]);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  await pool.end();
  latencies.sort((a, b) => a - b);
  return {
    eventsPerSecond: latencies.length / elapsed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

const SINGLE = 'mutation($input: EventInput!) { trackEvent(input: $input) { status } }';
const BATCHED = 'mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }';

async function post(url: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

function figuresOf(
  run: {
    requestsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
    gatewayCpuMsPerEvent: number;
    postgresCpuMsPerEvent?: number;
  },
  perRequest: number,
) {
  return {
    eventsPerSecond: run.requestsPerSecond * perRequest,
    p50Ms: run.p50Ms,
    p99Ms: run.p99Ms,
    gatewayCpuMsPerEvent: run.gatewayCpuMsPerEvent,
    ...(run.postgresCpuMsPerEvent === undefined ? {} : { postgresCpuMsPerEvent: run.postgresCpuMsPerEvent }),
  };
}

/**
 * Microseconds the feature worker spends attributing one event (EventAttributor#originOf) whose recommendationId
 * is a plain list's or a variant's signed one, as the worker is configured here (the development key: the
 * gateway runs without RECOMMENDATION_ID_KEY or USER_ID_KEY). Every signed id must verify.
 */
function workerAttributionCost(plain: readonly string[], signed: readonly string[]) {
  const attributor = new EventAttributor(
    new RecommendationIds(recommendationIdKey({ RECOMMENDATION_ID_KEY: '', USER_ID_KEY: '' }).key),
    { inc() {} },
  );
  if (signed.some((id) => attributor.originOf(id) === null)) throw new Error('a signed list id does not verify');
  const calls = 200_000;
  const micros = (ids: readonly string[]) => {
    const started = performance.now();
    for (let n = 0; n < calls; n++) attributor.originOf(ids[n % ids.length]!);
    return Math.round(((performance.now() - started) * 1000 * 100) / calls) / 100;
  };
  micros(signed);
  return { plain: micros(plain), signed: micros(signed) };
}

/** Rounds of the --experiment comparison. */
const ROUNDS = 2;
/** Seconds of each warm-up load before the first round. */
const WARM_UP_SECONDS = 3;

/** Single and batched ingestion without and with an experiment whose recommendationIds the events carry, alternating. */
async function experimentRun(url: string, databaseUrl: string, databaseName: string, pid: number) {
  const admin = new pg.Client({ connectionString: `${BENCH_SERVER_URL}/postgres` });
  await admin.connect();
  /** The gateway, and the Postgres backends serving this run's database: the two that share the cores. */
  const cpu = new CpuMeter({
    gateway: async () => [pid],
    postgres: () => postgresBackendPids(admin, databaseName),
  });
  /** A load run with CPU milliseconds per event by process (less sensitive to a busy machine than rates). */
  const measured = async (perRequest: number, body: () => string) => {
    const meter = await cpu.start();
    const figures = await load(url, body);
    const used = await meter.stop();
    const perEvent = (seconds: number | undefined) =>
      Math.round((((seconds ?? 0) * 1000) / (figures.requests * perRequest)) * 1000) / 1000;
    return {
      ...figures,
      gatewayCpuMsPerEvent: perEvent(used.gateway),
      postgresCpuMsPerEvent: perEvent(used.postgres),
    };
  };
  // Lists served to the same shoppers before and after the experiment starts: their ids are what the
  // storefront sends back on a click, a plain list's UUID without an experiment, a variant's signed id with one.
  const listsOf = async () => {
    const lists: { userId: string; recommendationId: string }[] = [];
    for (let n = 0; n < 200; n++) {
      const data = (await post(url, 'query($u: ID!) { recommendations(userId: $u, k: 5) { recommendationId } }', {
        u: `u${n}`,
      })) as { recommendations: { recommendationId: string } };
      lists.push({ userId: `u${n}`, recommendationId: data.recommendations.recommendationId });
    }
    return lists;
  };
  const plainLists = await listsOf();
  await post(url, 'mutation($input: ExperimentInput!) { upsertExperiment(input: $input) { id } }', {
    input: {
      id: 'bench-aa',
      variants: [
        { name: 'a', weight: 1 },
        { name: 'b', weight: 1 },
      ],
    },
  });
  const experimentLists = await listsOf();
  if (experimentLists.some((list) => !list.recommendationId.startsWith('x1.'))) {
    throw new Error('a list served under the experiment has no experiment recommendationId');
  }
  const clickFrom = (lists: readonly { userId: string; recommendationId: string }[]) => () => {
    if (Math.random() >= ATTRIBUTED_SHARE) return randomEvent();
    const list = lists[Math.floor(Math.random() * lists.length)]!;
    return { ...randomEvent(), type: 'CLICK', userId: list.userId, recommendationId: list.recommendationId };
  };
  const plainEvent = clickFrom(plainLists);
  const attributedEvent = clickFrom(experimentLists);
  const singleBody = (event: () => Record<string, unknown>) => () =>
    JSON.stringify({ query: SINGLE, variables: { input: event() } });
  const batchBody = (event: () => Record<string, unknown>) => () =>
    JSON.stringify({ query: BATCHED, variables: { inputs: Array.from({ length: BATCH }, event) } });
  // The Event table grows through the run and every insert gets a little dearer, so the order mirrors itself
  // round by round (single, single with, batch, batch with; then the reverse): over two rounds each arm's mean
  // sits at the same point of that drift as its pair's, instead of always running second.
  type Run = Awaited<ReturnType<typeof measured>>;
  const runs = { single: [] as Run[], singleWith: [] as Run[], batch: [] as Run[], batchWith: [] as Run[] };
  const steps: [keyof typeof runs, () => Promise<Run>][] = [
    ['single', () => measured(1, singleBody(plainEvent))],
    ['singleWith', () => measured(1, singleBody(attributedEvent))],
    ['batch', () => measured(BATCH, batchBody(plainEvent))],
    ['batchWith', () => measured(BATCH, batchBody(attributedEvent))],
  ];
  // Unmeasured: the first load on a fresh gateway runs before its code is optimised and its pools are full,
  // which alone cost the first arm 40 % of its rate; the mirrored order cannot even that out.
  for (const body of [singleBody(plainEvent), singleBody(attributedEvent), batchBody(plainEvent)]) {
    await load(url, body, WARM_UP_SECONDS);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? steps : [...steps].reverse();
    console.error(`round ${round} of ${ROUNDS}: ${order.map(([arm]) => arm).join(', ')}`);
    for (const [arm, run] of order) runs[arm].push(await run());
  }
  /** The rounds of one arm as one run: requests and CPU summed, latencies averaged. */
  const pooled = (arm: Run[]): Run => {
    const mean = (pick: (run: Run) => number) => arm.reduce((sum, run) => sum + pick(run), 0) / arm.length;
    return {
      requestsPerSecond: mean((run) => run.requestsPerSecond),
      p50Ms: mean((run) => run.p50Ms),
      p99Ms: mean((run) => run.p99Ms),
      requests: arm.reduce((sum, run) => sum + run.requests, 0),
      gatewayCpuMsPerEvent: Math.round(mean((run) => run.gatewayCpuMsPerEvent) * 1000) / 1000,
      postgresCpuMsPerEvent: Math.round(mean((run) => run.postgresCpuMsPerEvent) * 1000) / 1000,
    };
  };
  const single = pooled(runs.single);
  const singleWith = pooled(runs.singleWith);
  const batch = pooled(runs.batch);
  const batchWith = pooled(runs.batchWith);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query<{ count: string }>(
    `SELECT count(*) FROM "Event" WHERE "recommendationId" LIKE 'x1.%'`,
  );
  await client.end();
  const attribution = workerAttributionCost(
    plainLists.map((list) => list.recommendationId),
    experimentLists.map((list) => list.recommendationId),
  );
  await admin.end();
  const round = (value: number) => Math.round(value * 1000) / 1000;
  writeResults('ingest-experiment', {
    seconds,
    concurrency,
    batchSize: BATCH,
    attributedShare: ATTRIBUTED_SHARE,
    rounds: ROUNDS,
    roundsWhat:
      'odd rounds: single without, single with, batches without, batches with; even rounds the reverse; figures are means over rounds',
    armsWhat:
      'the same traffic; its clicks (attributedShare of events) carry a plain list id (a UUID) without the experiment and a variant list id with it',
    perRound: runs,
    without: {
      single: figuresOf(single, 1),
      batch: figuresOf(batch, BATCH),
    },
    withExperiment: {
      single: figuresOf(singleWith, 1),
      batch: figuresOf(batchWith, BATCH),
    },
    signedRows: Number(rows[0]?.count),
    workerAttributionMicrosPerEvent: attribution,
    ratios: {
      singleWithOverWithout: round(singleWith.requestsPerSecond / single.requestsPerSecond),
      batchWithOverWithout: round(batchWith.requestsPerSecond / batch.requestsPerSecond),
      singleCpuPerEventWithOverWithout: round(singleWith.gatewayCpuMsPerEvent / single.gatewayCpuMsPerEvent),
      batchCpuPerEventWithOverWithout: round(batchWith.gatewayCpuMsPerEvent / batch.gatewayCpuMsPerEvent),
      singlePostgresCpuPerEventWithOverWithout: round(singleWith.postgresCpuMsPerEvent / single.postgresCpuMsPerEvent),
      batchPostgresCpuPerEventWithOverWithout: round(batchWith.postgresCpuMsPerEvent / batch.postgresCpuMsPerEvent),
    },
    targets: { throughputWithOverWithoutAtLeast: 0.95 },
  });
}

const env = await createBenchEnvironment('ingest');
const port = await freePort();
const gateway = await startProcess(
  'server.ts',
  ['--role=gateway'],
  {
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    REDIS_PREFIX: env.id,
    DEMO_DATA: 'false',
    PORT: String(port),
    MAX_EVENT_BACKLOG: '0',
  },
  `http://127.0.0.1:${port}/ready`,
);
const url = `http://127.0.0.1:${port}`;
try {
  // A shop has its catalogue before events arrive; without it every event would also create a placeholder.
  for (let start = 0; start < ITEMS; start += 1000) {
    const items = Array.from({ length: 1000 }, (_, i) => ({
      id: `i${start + i}`,
      name: `Item ${start + i}`,
      price: 9.99,
    }));
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }',
        variables: { items },
      }),
    });
    if (!response.ok) throw new Error(`seeding the catalogue failed: ${await response.text()}`);
  }
  if (EXPERIMENT) await experimentRun(url, env.databaseUrl, env.id, gateway.child.pid ?? 0);
  else await standardRun(url, env.databaseUrl);
} finally {
  await gateway.stop();
  await env.drop();
}

/** The figures without experiments: the ceiling, single and batched ingestion, the SQL baseline. */
async function standardRun(url: string, databaseUrl: string) {
  console.error(`ceiling: { __typename } for ${seconds}s at concurrency ${concurrency}`);
  const ceiling = await load(url, () => JSON.stringify({ query: '{ __typename }' }));
  console.error('single trackEvent');
  const single = await load(url, () =>
    JSON.stringify({
      query: 'mutation($input: EventInput!) { trackEvent(input: $input) { status } }',
      variables: { input: randomEvent() },
    }),
  );
  console.error(`trackEvents batches of ${BATCH}`);
  const batch = await load(url, () =>
    JSON.stringify({
      query: 'mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }',
      variables: { inputs: Array.from({ length: BATCH }, randomEvent) },
    }),
  );
  console.error('baseline: plain parameterised INSERTs from one pool');
  const sql = await baseline(databaseUrl);

  const singleEventsPerSecond = single.requestsPerSecond;
  writeResults('ingest', {
    seconds,
    concurrency,
    batchSize: BATCH,
    single: { eventsPerSecond: singleEventsPerSecond, p50Ms: single.p50Ms, p99Ms: single.p99Ms },
    batch: { eventsPerSecond: batch.requestsPerSecond * BATCH, p50Ms: batch.p50Ms, p99Ms: batch.p99Ms },
    baseline: sql,
    ceiling: { requestsPerSecond: ceiling.requestsPerSecond, p99Ms: ceiling.p99Ms },
    ratios: {
      singleVsCeiling: singleEventsPerSecond / ceiling.requestsPerSecond,
      singleVsBaseline: singleEventsPerSecond / sql.eventsPerSecond,
      batchVsBaseline: (batch.requestsPerSecond * BATCH) / sql.eventsPerSecond,
    },
    targets: { singleVsCeilingAtLeast: 0.6, singleP99MsAtMost: 50, batchEventsPerSecondAtLeast: 30_000 },
  });
}
