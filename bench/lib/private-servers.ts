import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort } from './services.ts';

const run = promisify(execFile);

/** Polls `check` every 100 ms until it resolves true; throws `what` after `deadlineMs`. */
export async function until(check: () => Promise<boolean>, deadlineMs: number, what: string): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(deadlineMs / 1000)} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A redis-server of the suite's own on a free port, without persistence (so a restart comes back empty):
 * never the shared one on 6379, which other suites and sessions use.
 */
export interface PrivateRedis {
  url: string;
  /** SIGKILL, as a crash; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty) and resolves once it answers. */
  start(): Promise<void>;
  /** FLUSHALL on this Redis only. */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pgw-chaos-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const answers = async () => {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } finally {
      client.disconnect();
    }
  };
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    await until(answers, 20_000, `redis-server on port ${port}`);
  };
  const kill = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url,
    kill,
    start,
    async flushAll() {
      const client = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        await client.flushall();
      } finally {
        client.disconnect();
      }
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Postgres cluster of the suite's own (initdb + pg_ctl on a temp dir and a free port), so it may restart it. */
export interface PrivatePostgres {
  /** Server URL without a database, e.g. postgresql://postgres@127.0.0.1:5433. */
  serverUrl: string;
  /** Stops it the way a crash does (`pg_ctl stop -m immediate`: no checkpoint, recovery at the next start). */
  crash(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** Where initdb and pg_ctl live: on PATH, else Debian's /usr/lib/postgresql/<version>/bin. */
function postgresBinDir(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  const debian = '/usr/lib/postgresql';
  if (!existsSync(debian)) return undefined;
  const versions = readdirSync(debian).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = join(debian, version, 'bin');
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  return undefined;
}

/**
 * Starts a private cluster, or says why it could not (no initdb, running as root without a `postgres` user
 * to run it as: Postgres refuses to run as root).
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres | { unavailable: string }> {
  const bin = postgresBinDir();
  if (!bin) return { unavailable: 'no initdb/pg_ctl on PATH or under /usr/lib/postgresql' };
  const asRoot = process.getuid?.() === 0;
  let owner: { uid: number; gid: number } | undefined;
  if (asRoot) {
    try {
      owner = {
        uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
        gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
      };
    } catch {
      return { unavailable: 'running as root and there is no postgres user to run a cluster as' };
    }
    if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) {
      return { unavailable: 'running as root without runuser to start a cluster as the postgres user' };
    }
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pgw-chaos-pg-'));
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(data, owner.uid, owner.gid);
  }
  const command = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]) : run(join(bin, tool), args);
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-k ${dir}`,
    '-c max_connections=200',
    // A crash here is the process's, not the machine's: the OS keeps what was written, so no fsync is needed.
    '-c fsync=off',
  ].join(' ');
  const start = async () => {
    await command('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', options, 'start']);
  };
  try {
    await command('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await start();
    const client = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres` });
    await client.connect();
    await client.end();
  } catch (error) {
    await command('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    return { unavailable: `could not start a private cluster: ${(error as Error).message.split('\n')[0]}` };
  }
  return {
    serverUrl: `postgresql://postgres@127.0.0.1:${port}`,
    async crash() {
      await command('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    },
    start,
    async destroy() {
      await command('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
