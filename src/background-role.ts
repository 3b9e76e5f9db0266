import { existsSync, readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Config } from './config.ts';
import { createDb, type Db } from './db/client.ts';
import { prepareDatabase } from './db/prepare.ts';
import { startMetricsServer } from './http/metrics-server.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { handleProcessSignals, loadConfigOrExit } from './process.ts';
import { connectRedis, createRedis } from './redis.ts';

/** What a background role's entry point says about itself. */
export interface BackgroundRole {
  name: 'worker' | 'trainer';
  /** Its `/metrics` port (0 = off). */
  metricsPort: (config: Config) => number;
  poolSize: number;
  /** Whether its statements get PG_STATEMENT_TIMEOUT_MS (not the trainer's long reads of the log). */
  statementTimeout: boolean;
  /** OS priority to run at (nice); set before any thread starts, so every thread inherits it. */
  nice?: (config: Config) => number;
  start(config: Config, deps: { db: Db; logger: Logger; metrics: Metrics }): Promise<{ stop(): Promise<void> }>;
}

/**
 * Runs a background role as its process: configuration, migrations, Postgres pool, metrics server, the role,
 * and a graceful stop on SIGTERM (metrics server, then the role, then Postgres).
 */
export async function runBackgroundRole(role: BackgroundRole): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.LOG_LEVEL, role.name);
  const nice = role.nice?.(config) ?? 0;
  if (nice > 0) lowerPriority(nice);
  await waitForDependencies(config, logger);
  const metrics = createMetrics([role.name]);
  const db = createDb(config.DATABASE_URL, {
    poolSize: role.poolSize,
    connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
    ...(role.statementTimeout ? { statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS } : {}),
    onError: (error) => {
      metrics.dependencyErrors.inc({ dependency: 'postgres' });
      logger.warn({ err: error.message }, 'postgres connection error');
    },
  });
  const running = await role.start(config, { db, logger, metrics });
  const port = role.metricsPort(config);
  const metricsServer = port > 0 ? await startMetricsServer({ registry: metrics.registry, port, logger }) : undefined;
  handleProcessSignals(logger, async () => {
    await metricsServer?.close();
    await running.stop();
    await db.$disconnect();
  });
  logger.info(`${role.name} running`);
}

/**
 * Lowers the priority of the whole process. On Linux a nice value belongs to a thread, and Node has started
 * V8's and libuv's threads before any of our code runs, so each existing thread is set (threads started later
 * inherit it from the main thread); elsewhere the process as the OS defines it.
 */
function lowerPriority(nice: number): void {
  const tasks = '/proc/self/task';
  if (!existsSync(tasks)) {
    setPriority(nice);
    return;
  }
  for (const thread of readdirSync(tasks)) setPriority(Number(thread), nice);
}

/** Longest pause between two start attempts while a dependency is down. */
const MAX_RETRY_MS = 10_000;

/**
 * Prepares the database and checks that Redis answers, retrying with backoff for as long as either is
 * down: a role started before its dependencies (a reboot, a compose start) waits for them instead of
 * exiting. Logs once per change of what it waits for, not once per attempt.
 */
async function waitForDependencies(config: Config, logger: Logger): Promise<void> {
  let delay = 250;
  let waitingFor: string | undefined;
  for (;;) {
    let failed: { dependency: string; error: unknown } | undefined;
    try {
      await prepareDatabase(config.DATABASE_URL, logger);
    } catch (error) {
      failed = { dependency: 'Postgres', error };
    }
    if (!failed) {
      const redis = createRedis(config.REDIS_URL, 'command');
      redis.on('error', () => undefined);
      try {
        await connectRedis(redis, config.REDIS_URL);
      } catch (error) {
        failed = { dependency: 'Redis', error };
      } finally {
        redis.disconnect();
      }
    }
    if (!failed) {
      if (waitingFor) logger.info({ after: waitingFor }, 'dependencies answer; starting');
      return;
    }
    if (waitingFor !== failed.dependency) {
      waitingFor = failed.dependency;
      logger.warn(
        { err: (failed.error as Error).message },
        `${failed.dependency} does not answer; retrying until it does`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, MAX_RETRY_MS);
  }
}
