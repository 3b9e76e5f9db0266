// The fault suite (`npm run chaos`, `-- --short` for CI): two gateways, a feature worker and a trainer as
// separate processes against a Redis of its own (free port, no persistence) and a fresh database (on a private
// Postgres cluster when it can start one, so it may restart it; else on the local server, and it says so).
// A storefront load with recorded acknowledgements runs throughout while, in turn, it kills the worker (-9,
// restart), a gateway (-9, restart) and Redis (-9, restart empty), wipes Redis (FLUSHALL), floods duplicates
// (acknowledged eventIds sent again) and restarts Postgres; after each it measures how long the system took
// to heal. At the end it asserts: every acknowledged eventId stored exactly once, every stored event
// processed, the live features equal to a fresh replay of the log, no process dead that was not killed.
// Prints a table, writes bench/results/chaos.json, and exits 1 when a guarantee fails.
//
// Flags: --short (about 3 minutes), --rounds <n> (fault cycles), --rate <events/s>, --keep-logs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type Config, loadConfig } from '../src/config.ts';
import { createDb } from '../src/db/client.ts';
import { ensureDatabase, migrate } from '../src/db/migrator.ts';
import { FEATURE_LAYOUT } from '../src/services/features.ts';
import { compareWithReplay, type FeatureComparison } from './lib/chaos-compare.ts';
import { Answer, ChaosLoad, type LoadEvent } from './lib/chaos-load.ts';
import { RoleProcess, type UnexpectedExit } from './lib/chaos-roles.ts';
import { type PrivatePostgres, startPrivatePostgres, startPrivateRedis, until } from './lib/private-servers.ts';
import { writeResults } from './lib/results.ts';
import { freePort } from './lib/services.ts';

const { values: flags } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    rate: { type: 'string' },
    'keep-logs': { type: 'boolean', default: false },
  },
});
const short = flags.short ?? false;
const size = {
  rounds: Number(flags.rounds ?? (short ? 1 : 3)),
  rate: Number(flags.rate ?? (short ? 60 : 120)),
  shoppers: short ? 1500 : 5000,
  items: 400,
  // Below the applied-id window (64): a redelivery is then always recognised (see APPLIED_IDS_KEPT).
  eventsPerShopper: 40,
  settleMs: short ? 3000 : 8000,
  floodIds: short ? 300 : 1000,
  floodCopies: short ? 5 : 20,
};
/** Longest a fault may take to heal: generous, for a loaded 2-core machine; the guarantees are exact. */
const HEAL_DEADLINE_MS = 240_000;
const PREFIX = 'chaos';
const suiteStarted = Date.now();
const log = (message: string) =>
  console.error(`[chaos ${((Date.now() - suiteStarted) / 1000).toFixed(1)} s] ${message}`);

type FaultName = 'worker-kill' | 'gateway-kill' | 'redis-kill' | 'redis-flush' | 'duplicate-flood' | 'postgres-restart';
interface FaultResult {
  name: FaultName;
  round: number;
  healedSeconds: number | null;
  /** Events acknowledged between the fault and its healing. */
  acknowledgedMeanwhile: number;
  /** The last condition healing waited for (what took longest to come back). */
  lastWaitedFor: string;
  note?: string;
}

const logDir = mkdtempSync(join(tmpdir(), 'pgw-chaos-logs-'));
const unexpected: UnexpectedExit[] = [];
const cleanups: (() => Promise<void>)[] = [];
let failures: string[] = [];

try {
  failures = await runSuite();
} catch (error) {
  failures.push(`the suite itself failed: ${(error as Error).stack ?? String(error)}`);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => log(`cleanup failed: ${error}`));
}
if (failures.length) {
  console.error(`\nchaos: FAILED\n- ${failures.join('\n- ')}\nrole logs: ${logDir}`);
  process.exit(1);
}
if (!flags['keep-logs']) rmSync(logDir, { recursive: true, force: true });
else console.error(`role logs: ${logDir}`);
console.error('chaos: every guarantee held');
process.exit(0);

async function runSuite(): Promise<string[]> {
  const redis = await startPrivateRedis();
  cleanups.push(() => redis.stop());
  log(`private redis at ${redis.url}`);
  const privatePg = await startPrivatePostgres();
  let postgres: PrivatePostgres | undefined;
  let serverUrl = process.env.BENCH_DATABASE_SERVER_URL ?? 'postgresql://postgres@127.0.0.1:5432';
  let postgresNote: string | undefined;
  if ('unavailable' in privatePg) {
    postgresNote = `no Postgres restart: ${privatePg.unavailable}; the suite runs on ${serverUrl}`;
    log(postgresNote);
  } else {
    postgres = privatePg;
    cleanups.push(() => privatePg.destroy());
    serverUrl = privatePg.serverUrl;
    log(`private postgres cluster at ${serverUrl}`);
  }
  const database = `pgw_chaos_${Date.now().toString(36)}`;
  const databaseUrl = `${serverUrl}/${database}`;
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
  if (!postgres) cleanups.push(() => dropDatabase(serverUrl, database));
  const items = await seedCatalogue(databaseUrl, size.items);

  const ports = [await freePort(), await freePort()];
  const gatewayUrls = ports.map((port) => `http://127.0.0.1:${port}`);
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    REDIS_PREFIX: PREFIX,
    DEMO_DATA: 'false',
    // One address sends everything: a per-client rate limit would only measure itself.
    RATE_LIMIT_PER_SECOND: '0',
    OUTBOX_SWEEP_INTERVAL_MS: '500',
    OUTBOX_GRACE_MS: '2000',
    TRAIN_INTERVAL_MINUTES: '0',
    WORKER_METRICS_PORT: '0',
    TRAINER_METRICS_PORT: '0',
    TRAIN_THREADS: '1',
    LOG_LEVEL: 'info',
  };
  const config: Config = loadConfig(env);
  const role = (name: string, entry: string, extra: Record<string, string> = {}, args: string[] = []) =>
    new RoleProcess({ name, entry, args, env: { ...env, ...extra }, logDir, unexpected });
  const gateways = ports.map((port, index) =>
    role(`gateway-${index + 1}`, 'server.ts', { PORT: String(port) }, ['--role=gateway']),
  );
  const worker = role('worker', 'worker.ts');
  const trainer = role('trainer', 'trainer.ts');
  const roles = [...gateways, worker, trainer];
  cleanups.push(async () => {
    await Promise.all(roles.map((entry) => entry.stop()));
    for (const entry of roles) entry.closeLog();
  });
  for (const entry of roles) entry.start();

  const probe = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 200 });
  probe.on('error', () => undefined);
  cleanups.push(async () => probe.disconnect());
  const db = createDb(databaseUrl, { poolSize: 4, onError: () => undefined, connectTimeoutMs: 5000 });
  cleanups.push(() => db.$disconnect());

  // Status values /ready gave: `rebuilding` shows a replay was seen from outside.
  const readyStatuses = new Map<string, number>();
  const statusSeen = (status: string) => readyStatuses.set(status, (readyStatuses.get(status) ?? 0) + 1);
  const ready = (url: string) =>
    fetch(`${url}/ready`, { signal: AbortSignal.timeout(3000) }).then(async (response) => {
      const body = (await response.json()) as { status?: string; warming?: { features?: unknown } };
      statusSeen(body.status ?? String(response.status));
      return response.status === 200 && body.status === 'ready' && body.warming?.features === undefined;
    });
  const markerPresent = async () => (await probe.get(`${PREFIX}:f:layout`)) === FEATURE_LAYOUT;
  await until(async () => (await Promise.all(gatewayUrls.map(ready))).every(Boolean), 120_000, 'gateways ready');
  await until(
    () => Promise.resolve(trainer.lines.some((line) => line.includes('trainer running'))),
    120_000,
    'trainer running',
  );
  await until(markerPresent, 120_000, 'the worker wrote the feature layout');
  log('two gateways, a worker and a trainer run');

  const load = new ChaosLoad({
    gateways: gatewayUrls,
    rate: size.rate,
    shoppers: size.shoppers,
    items,
    eventsPerShopper: size.eventsPerShopper,
    seed: 20261202,
  });
  load.start();
  await pause(size.settleMs);
  // The trainer trains once under the load, so it too lives through the faults with work behind it.
  await fetch(`${gatewayUrls[0]}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation { retrainModel(params: { factors: 8, iterations: 5 }) { jobId status } }',
    }),
  }).catch(() => undefined);

  // What a storefront asking for trending saw throughout: a full list, a short one (half-empty features shown
  // as if whole: what a rebuild must never serve), or no answer (UNAVAILABLE, a dead gateway).
  const trendingSeen = { full: 0, short: 0, unavailable: 0 };
  let sampling = true;
  const sampler = (async () => {
    for (let turn = 0; sampling; turn++) {
      const url = gatewayUrls[turn % gatewayUrls.length] as string;
      try {
        const response = await fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ trending(k: 10) { item { id } } }' }),
          signal: AbortSignal.timeout(5000),
        });
        const body = (await response.json()) as { data?: { trending?: unknown[] } | null };
        const length = body.data?.trending?.length;
        if (length === undefined) trendingSeen.unavailable++;
        else if (length < 10) trendingSeen.short++;
        else trendingSeen.full++;
      } catch {
        trendingSeen.unavailable++;
      }
      await pause(250);
    }
  })();
  let probes = 0;
  /** A new shopper's event after the fault: stored and processed, and seen by both gateways. */
  const probeSeen = async (event: LoadEvent): Promise<boolean> => {
    const seen = await Promise.all(
      gatewayUrls.map(async (url) => {
        const response = await fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            query: 'query($userId: ID!) { shopper(userId: $userId) { recentItems { id } } }',
            variables: { userId: event.userId },
          }),
          signal: AbortSignal.timeout(3000),
        });
        const body = (await response.json()) as { data?: { shopper?: { recentItems: { id: string }[] } } };
        return body.data?.shopper?.recentItems.some((item) => item.id === event.itemId) ?? false;
      }),
    );
    return seen.every(Boolean);
  };
  /** What the system still lacks to be whole again after a fault, or undefined when it is. */
  /**
   * What the system still lacks to be whole again after a fault, or undefined when it is. `onStep` hears each
   * condition as it is checked, so a check that itself takes long (a dependency slow to answer) is named too.
   */
  const missing = async (
    faultAt: Date,
    probe: LoadEvent,
    onStep: (step: string) => void,
  ): Promise<string | undefined> => {
    // A dependency that does not answer yet is one more thing to wait for, not an error.
    const holds = async (step: string, check: () => Promise<boolean>) => {
      onStep(step);
      return check().catch(() => false);
    };
    if (!(await holds('a process starting', async () => roles.every((entry) => entry.running)))) {
      return 'a process starting';
    }
    if (!(await holds('Redis with the features (replay)', markerPresent))) return 'Redis with the features (replay)';
    const gatewaysReady = async () =>
      (await Promise.all(gatewayUrls.map((url) => ready(url).catch(() => false)))).every(Boolean);
    if (!(await holds('a gateway ready', gatewaysReady))) return 'a gateway ready';
    const backlogDone = async () => {
      const [row] = await db.$queryRaw<{ waiting: bigint }[]>`
        SELECT count(*) AS waiting FROM "Event" WHERE "processedAt" IS NULL AND "receivedAt" <= ${faultAt}`;
      return row?.waiting === 0n;
    };
    const backlog = 'the events stored before the fault processed';
    if (!(await holds(backlog, backlogDone))) return backlog;
    const probeDone = async () => {
      const [row] = await db.$queryRaw<{ processed: boolean }[]>`
        SELECT "processedAt" IS NOT NULL AS processed FROM "Event" WHERE "eventId" = ${probe.eventId}`;
      return row?.processed === true;
    };
    if (!(await holds('a new event stored and processed', probeDone))) return 'a new event stored and processed';
    const seen = 'a new event seen by both gateways';
    if (!(await holds(seen, () => probeSeen(probe)))) return seen;
    return undefined;
  };
  const heal = async (name: FaultName, round: number, faultAt: Date, ackedBefore: number): Promise<FaultResult> => {
    const probeEvent: LoadEvent = {
      eventId: `probe-${name}-${round}-${probes}`,
      userId: `probe-${probes++}`,
      type: 'VIEW',
      itemId: items[probes % items.length] as string,
      sessionId: 's-probe',
    };
    const delivered = load.deliver([probeEvent]);
    let waitedFor = 'nothing';
    const result = (healedSeconds: number | null): FaultResult => ({
      name,
      round,
      healedSeconds,
      acknowledgedMeanwhile: load.ledger.acknowledged().size - ackedBefore,
      lastWaitedFor: waitedFor,
    });
    try {
      await until(
        async () => {
          // What held healing up: the condition not met yet, or the one whose check took longest to answer.
          let slowest = { step: 'nothing', ms: 0 };
          let current: { step: string; at: number } | undefined;
          const onStep = (step: string) => {
            const now = Date.now();
            if (current && now - current.at > slowest.ms) slowest = { step: current.step, ms: now - current.at };
            current = { step, at: now };
          };
          const lacking = await missing(faultAt, probeEvent, onStep);
          onStep('done');
          if (lacking) waitedFor = lacking;
          else if (slowest.ms > 1000) waitedFor = slowest.step;
          return lacking === undefined;
        },
        HEAL_DEADLINE_MS,
        name,
      );
      await delivered;
      const seconds = (Date.now() - faultAt.getTime()) / 1000;
      log(`${name}: healed in ${seconds.toFixed(1)} s (last waited for ${waitedFor})`);
      return result(seconds);
    } catch (error) {
      await delivered;
      log(`${name}: did not heal (${(error as Error).message}; waiting for ${waitedFor})`);
      return result(null);
    }
  };

  const faults: FaultResult[] = [];
  const inject = async (name: FaultName, round: number, act: () => Promise<string | undefined>) => {
    const ackedBefore = load.ledger.acknowledged().size;
    const faultAt = new Date();
    log(`${name} (round ${round})`);
    const note = await act();
    const result = await heal(name, round, faultAt, ackedBefore);
    faults.push(note ? { ...result, note } : result);
    await pause(size.settleMs);
  };
  const floodFailures: string[] = [];
  for (let round = 1; round <= size.rounds; round++) {
    await inject('worker-kill', round, async () => {
      await worker.kill();
      await pause(1500);
      worker.start();
      return undefined;
    });
    const victim = gateways[(round - 1) % gateways.length] as RoleProcess;
    await inject('gateway-kill', round, async () => {
      await victim.kill();
      await pause(1500);
      victim.start();
      return victim.name;
    });
    await inject('redis-kill', round, async () => {
      await redis.kill();
      await pause(2000);
      await redis.start();
      return undefined;
    });
    await inject('redis-flush', round, async () => {
      await redis.flushAll();
      return undefined;
    });
    await inject('duplicate-flood', round, async () => {
      const acknowledged = [...load.ledger.acknowledged()]
        .map((eventId) => load.sent.get(eventId))
        .filter((event): event is LoadEvent => event !== undefined && !event.eventId.startsWith('probe-'))
        .slice(-size.floodIds);
      const before = new Map(
        acknowledged.map((event) => [event.eventId, load.ledger.answers.get(event.eventId)?.length ?? 0]),
      );
      const batches: LoadEvent[][] = [];
      for (let copy = 0; copy < size.floodCopies; copy++) {
        for (let start = 0; start < acknowledged.length; start += 100)
          batches.push(acknowledged.slice(start, start + 100));
      }
      for (let start = 0; start < batches.length; start += 4) {
        await Promise.all(batches.slice(start, start + 4).map((batch) => load.deliver(batch)));
      }
      let notDuplicate = 0;
      for (const [eventId, count] of before) {
        const answers = load.ledger.answers.get(eventId)?.slice(count) ?? [];
        notDuplicate += answers.filter((answer) => answer !== Answer.DUPLICATE && answer !== Answer.RETRY).length;
      }
      if (notDuplicate) floodFailures.push(`${notDuplicate} resent events were not answered DUPLICATE`);
      return `${acknowledged.length} eventIds × ${size.floodCopies}`;
    });
    if (postgres) {
      const cluster = postgres;
      await inject('postgres-restart', round, async () => {
        await cluster.crash();
        await pause(2000);
        await cluster.start();
        return 'pg_ctl stop -m immediate, start';
      });
    }
  }

  log('stopping the load');
  sampling = false;
  await sampler;
  await load.stop();
  // Drained: every stored event processed, no replay left, the features complete.
  const drainedAt = new Date();
  await until(
    async () => {
      const [row] = await db.$queryRaw<{ waiting: bigint }[]>`
        SELECT count(*) AS waiting FROM "Event" WHERE "processedAt" IS NULL`;
      return (
        row?.waiting === 0n && (await markerPresent()) && (await Promise.all(gatewayUrls.map(ready))).every(Boolean)
      );
    },
    HEAL_DEADLINE_MS,
    'every stored event processed after the load',
  ).catch((error) => log((error as Error).message));
  log(`drained in ${((Date.now() - drainedAt.getTime()) / 1000).toFixed(1)} s`);

  const { ledger } = load;
  const acknowledged = ledger.acknowledged();
  const rows = await db.$queryRaw<{ eventId: string; processed: boolean }[]>`
    SELECT "eventId", "processedAt" IS NOT NULL AS processed FROM "Event"`;
  const storedIds = new Map<string, number>();
  let processed = 0;
  for (const row of rows) {
    storedIds.set(row.eventId, (storedIds.get(row.eventId) ?? 0) + 1);
    if (row.processed) processed++;
  }
  const lost = [...acknowledged].filter((eventId) => !storedIds.has(eventId));
  const storedTwice = [...storedIds.values()].filter((count) => count > 1).length;
  const userIds = [...new Set([...load.sent.values()].map((event) => event.userId))];
  const comparison: FeatureComparison = await compareWithReplay(db, probe, config, userIds);
  const deadRoles = roles.filter((entry) => !entry.running).map((entry) => entry.name);

  const exitCodes: Record<string, number | null> = {};
  for (const entry of roles) exitCodes[entry.name] = await entry.stop();

  const conflicts = ledger.count(Answer.CONFLICT);
  const refused = ledger.count(Answer.REFUSED);
  const checks: [boolean, string][] = [
    [lost.length === 0, `${lost.length} acknowledged events are not stored (e.g. ${lost.slice(0, 3).join(', ')})`],
    [storedTwice === 0, `${storedTwice} eventIds are stored more than once`],
    [ledger.acceptedTwice() === 0, `${ledger.acceptedTwice()} eventIds were answered ACCEPTED twice`],
    [processed === rows.length, `${rows.length - processed} stored events were never processed`],
    [comparison.matches, `the live features differ from a fresh replay: ${comparison.examples.join('; ')}`],
    [
      unexpected.length === 0,
      `processes died that were not killed: ${unexpected.map((exit) => `${exit.role} (code ${exit.code}, signal ${exit.signal}) at ${exit.at}: ${exit.lastLines.slice(-3).join(' | ')}`).join('; ')}`,
    ],
    [deadRoles.length === 0, `not running at the end: ${deadRoles.join(', ')}`],
    [
      ledger.unacknowledged.size === 0,
      `${ledger.unacknowledged.size} events were never acknowledged within the retry deadline`,
    ],
    [conflicts === 0, `${conflicts} retries were answered CONFLICT (they carried the same payload)`],
    [refused === 0, `${refused} valid events were refused`],
    [floodFailures.length === 0, floodFailures.join('; ')],
    [
      trendingSeen.short === 0,
      `${trendingSeen.short} trending answers were short (half-empty features served as whole)`,
    ],
    [
      faults.every((fault) => fault.healedSeconds !== null),
      `did not heal within ${HEAL_DEADLINE_MS / 1000} s: ${faults
        .filter((fault) => fault.healedSeconds === null)
        .map((fault) => fault.name)
        .join(', ')}`,
    ],
  ];
  const failed = checks.filter(([ok]) => !ok).map(([, message]) => message);

  const summary = {
    acknowledged: acknowledged.size,
    stored: rows.length,
    processed,
    lost: lost.length,
    doubleApplied: comparison.doubleApplied + storedTwice,
    featuresMatchReplay: comparison.matches,
    faults: faults.map((fault) => ({
      name: fault.name,
      round: fault.round,
      healedSeconds: fault.healedSeconds === null ? null : Math.round(fault.healedSeconds * 10) / 10,
      acknowledgedMeanwhile: fault.acknowledgedMeanwhile,
      lastWaitedFor: fault.lastWaitedFor,
      ...(fault.note ? { note: fault.note } : {}),
    })),
  };
  printTable(summary, comparison);
  writeResults('chaos', {
    ...summary,
    passed: failed.length === 0,
    failures: failed,
    postgresRestart: postgres ? 'private cluster (initdb + pg_ctl)' : postgresNote,
    size: { ...size, short },
    load: {
      rate: size.rate,
      requests: ledger.requests,
      retriedRequests: ledger.retried,
      requestsOver15s: ledger.slow,
      answers: {
        accepted: ledger.count(Answer.ACCEPTED),
        duplicate: ledger.count(Answer.DUPLICATE),
        conflict: conflicts,
        refused,
        noAnswer: ledger.count(Answer.RETRY),
      },
      unacknowledged: ledger.unacknowledged.size,
    },
    features: comparison,
    trendingAnswers: trendingSeen,
    readyStatuses: Object.fromEntries(readyStatuses),
    gracefulStopExitCodes: exitCodes,
    unexpectedExits: unexpected,
    seconds: Math.round((Date.now() - suiteStarted) / 1000),
  });
  return failed;
}

function printTable(
  summary: {
    acknowledged: number;
    stored: number;
    processed: number;
    lost: number;
    doubleApplied: number;
    featuresMatchReplay: boolean;
    faults: {
      name: string;
      round: number;
      healedSeconds: number | null;
      acknowledgedMeanwhile: number;
      lastWaitedFor: string;
    }[];
  },
  comparison: FeatureComparison,
) {
  const rows: [string, string][] = [
    ['acknowledged', String(summary.acknowledged)],
    ['stored', String(summary.stored)],
    ['processed', String(summary.processed)],
    ['lost', String(summary.lost)],
    ['double-applied', String(summary.doubleApplied)],
    [
      'features = replay',
      `${summary.featuresMatchReplay ? 'yes' : 'NO'} (${comparison.shoppers} shoppers, ${comparison.pairs} pairs, ${comparison.trendingItems} trending items, max trending Δ ${comparison.maxTrendingDelta.toExponential(1)})`,
    ],
    ...summary.faults.map((fault): [string, string] => [
      `healed: ${fault.name}${size.rounds > 1 ? ` #${fault.round}` : ''}`,
      fault.healedSeconds === null
        ? `NOT HEALED (waiting for ${fault.lastWaitedFor})`
        : `${fault.healedSeconds.toFixed(1)} s (last waited for ${fault.lastWaitedFor}; ${fault.acknowledgedMeanwhile} events acknowledged meanwhile)`,
    ]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  console.error(`\n${'-'.repeat(width + 40)}`);
  for (const [name, value] of rows) console.error(`${name.padEnd(width)}  ${value}`);
  console.error(`${'-'.repeat(width + 40)}\n`);
}

async function seedCatalogue(databaseUrl: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, index) => `sku-${index}`);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO "Item" ("id", "name", "category", "inStock")
       SELECT id, id, 'category-' || (n % 8), true FROM UNNEST($1::text[]) WITH ORDINALITY AS t(id, n)`,
      [ids],
    );
  } finally {
    await client.end();
  }
  return ids;
}

async function dropDatabase(serverUrl: string, database: string): Promise<void> {
  const admin = new pg.Client({ connectionString: `${serverUrl}/postgres` });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
