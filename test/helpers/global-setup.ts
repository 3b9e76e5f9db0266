import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { ensureDatabase, migrate } from '../../src/db/migrator.ts';

/** The local Postgres server the suites run against; each run makes and drops its own databases on it. */
export const TEST_SERVER_URL = process.env.TEST_DATABASE_SERVER_URL ?? 'postgresql://postgres@127.0.0.1:5432';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Unique per `vitest run`: names this run's databases and Redis prefixes. */
    runId: string;
  }
}

/** Makes this run's template database (migrated once); each test file clones it. Drops everything after. */
export default async function setup(project: TestProject) {
  const runId = `pgwt_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const templateUrl = `${TEST_SERVER_URL}/${runId}_template`;
  await ensureDatabase(templateUrl);
  await migrate(templateUrl);
  project.provide('runId', runId);

  return async () => {
    const admin = new pg.Client({ connectionString: `${TEST_SERVER_URL}/postgres` });
    await admin.connect();
    const { rows } = await admin.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1)',
      [runId],
    );
    for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    await admin.end();

    const redis = new Redis(TEST_REDIS_URL);
    for await (const keys of redis.scanStream({ match: `${runId}*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length) await redis.unlink(...keys);
    }
    redis.disconnect();
  };
}
