import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ensureDatabase, migrate } from '../../src/db/migrator.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_SERVER_URL = process.env.BENCH_DATABASE_SERVER_URL ?? 'postgresql://postgres@127.0.0.1:5432';
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A fresh, migrated database and Redis prefix for one benchmark run; `drop()` removes both. */
export async function createBenchEnvironment(name: string) {
  const id = `pgwb_${name}_${Date.now().toString(36)}`;
  const databaseUrl = `${BENCH_SERVER_URL}/${id}`;
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
  return {
    id,
    databaseUrl,
    redisUrl: BENCH_REDIS_URL,
    async drop() {
      const admin = new pg.Client({ connectionString: `${BENCH_SERVER_URL}/postgres` });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${id}" WITH (FORCE)`);
      await admin.end();
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
 * Starts `src/<entry>` as its own process (so the load generator does not share its event loop).
 * BENCH_NODE_FLAGS adds Node flags to it, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile a run.
 */
export async function startProcess(entry: string, args: string[], env: Record<string, string>, readyUrl?: string) {
  const flags = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
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
