import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ensureDatabase, migrate } from '../../src/db/migrator.ts';
import { nodeFlagsOf } from '../../src/node-flags.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_SERVER_URL = process.env.BENCH_DATABASE_SERVER_URL ?? 'postgresql://postgres@127.0.0.1:5432';
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A redis-server of the benchmark's own on a free port (no persistence), so the CPU it spends is the run's
 * alone: the shared one on 6379 also serves whatever else runs on the machine.
 */
async function startPrivateRedis() {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  const until = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode} (is it installed?)`);
    if (
      await probe.ping().then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  probe.disconnect();
  return {
    url,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A fresh, migrated database and Redis prefix for one benchmark run; `drop()` removes both. With
 * `privateRedis` the run gets a redis-server of its own (`redisPid` names it) instead of BENCH_REDIS_URL.
 */
export async function createBenchEnvironment(name: string, options: { privateRedis?: boolean } = {}) {
  const id = `pgwb_${name}_${Date.now().toString(36)}`;
  const databaseUrl = `${BENCH_SERVER_URL}/${id}`;
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
  const privateRedis = options.privateRedis ? await startPrivateRedis() : undefined;
  const redisUrl = privateRedis?.url ?? BENCH_REDIS_URL;
  return {
    id,
    databaseUrl,
    redisUrl,
    redisPid: privateRedis?.pid,
    /**
     * What every role of the run starts with: this database and Redis prefix, no demo data, no training
     * schedule, and the metrics ports off (other processes on the machine may hold the defaults, and a role
     * that cannot listen exits). Training trains ALS: under `auto` the family chosen varies from run to run
     * with the search, and so would what serving costs; item-to-item serving has its own figures
     * (`freshness --item-to-item`, `neighbours`).
     */
    roleEnv: {
      TRAIN_MODEL: 'als',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: id,
      DEMO_DATA: 'false',
      TRAIN_INTERVAL_MINUTES: '0',
      WORKER_METRICS_PORT: '0',
      TRAINER_METRICS_PORT: '0',
    },
    async drop() {
      const admin = new pg.Client({ connectionString: `${BENCH_SERVER_URL}/postgres` });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${id}" WITH (FORCE)`);
      await admin.end();
      if (privateRedis) {
        await privateRedis.stop();
        return;
      }
      const redis = new Redis(BENCH_REDIS_URL);
      for await (const keys of redis.scanStream({ match: `${id}*`, count: 1000 }) as AsyncIterable<string[]>) {
        if (keys.length) await redis.unlink(...keys);
      }
      redis.disconnect();
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/**
 * Starts `src/<entry>` as its own process (so the load generator does not share its event loop), with the
 * Node flags it runs with in production (src/node-flags.ts). BENCH_NODE_FLAGS adds Node flags to it, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile a run; `nodeFlags` adds this one process's own (an
 * inspector port, say).
 */
export async function startProcess(
  entry: string,
  args: string[],
  env: Record<string, string>,
  readyUrl?: string,
  nodeFlags: readonly string[] = [],
) {
  const flags = [
    ...nodeFlagsOf(entry),
    ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
    ...nodeFlags,
  ];
  const child: ChildProcess = spawn(process.execPath, [...flags, '--import', 'tsx', `${root}src/${entry}`, ...args], {
    cwd: root,
    // A benchmark loads the gateway from one address on purpose: the per-client rate limit would measure itself.
    env: { ...process.env, LOG_LEVEL: 'warn', RATE_LIMIT_PER_SECOND: '0', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (readyUrl) {
    const until = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${entry} exited with ${child.exitCode}`);
      const ok = await fetch(readyUrl).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > until) throw new Error(`${entry} not ready within 60 s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return {
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The Postgres backend processes serving `databaseName` now (one per open connection), for CPU metering. */
export async function postgresBackendPids(admin: pg.Client, databaseName: string): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
    [databaseName],
  );
  return rows.map((row) => row.pid);
}
