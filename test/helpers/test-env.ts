import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { type Config, loadConfig } from '../../src/config.ts';
import { TEST_REDIS_URL, TEST_SERVER_URL } from './global-setup.ts';

/**
 * A fresh database (cloned from the run's migrated template) and Redis prefix for one test file, and the
 * gateway configuration that points at them.
 */
export async function createTestConfig(overrides: Record<string, string> = {}): Promise<Config> {
  const runId = inject('runId');
  const name = `${runId}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${TEST_SERVER_URL}/postgres` });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${runId}_template"`);
  } finally {
    await admin.end();
  }
  return loadConfig({
    DATABASE_URL: `${TEST_SERVER_URL}/${name}`,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: name,
    DEMO_DATA: 'false',
    LOG_LEVEL: 'silent',
    OUTBOX_SWEEP_INTERVAL_MS: '100',
    OUTBOX_GRACE_MS: '300',
    WORKER_LOCK_MS: '2000',
    // The schedule trains once at start: a model appearing mid-test would push lists no test asked for.
    // Tests that need a model train it with retrainModel.
    TRAIN_INTERVAL_MINUTES: '0',
    // No parameter search in tests that only need a model: each family is fitted once with its defaults (the
    // selection among them still runs). Tests of the search set a budget of their own.
    TUNE_BUDGET_SECONDS: '0',
    // Suites written for the learned (ALS) path keep it; model-selection tests ask for auto themselves.
    TRAIN_MODEL: 'als',
    // Test runs share the machine's ports: the worker's and trainer's metrics servers stay off unless a test asks.
    WORKER_METRICS_PORT: '0',
    TRAINER_METRICS_PORT: '0',
    ...overrides,
  });
}

export function uniqueId(label: string): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

/**
 * A Redis key prefix of this run's own (the run id first), for a test that writes Redis outside its config's
 * prefix: the run's teardown deletes every key under the run id, so nothing is left in the shared Redis.
 */
export function redisTestPrefix(label: string): string {
  return `${inject('runId')}_${uniqueId(label)}`;
}

/** Purchases of `userId`, one per item. */
export function purchasesOf(userId: string, items: readonly string[]) {
  return items.map((itemId) => ({ userId, type: 'PURCHASE', itemId }));
}

/**
 * Shoppers in taste groups, each buying five of their group's items, drawn with a seeded generator so every
 * run sees the same data: enough structure for a small model to learn.
 */
export function tasteGroupPurchases(
  seed: number,
  groups: readonly { label: string; items: readonly string[]; shoppers: number }[],
) {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const fiveOf = (items: readonly string[]) => [...items].sort(() => random() - 0.5).slice(0, 5);
  return groups.flatMap(({ label, items, shoppers }) =>
    Array.from({ length: shoppers }, () => purchasesOf(uniqueId(label), fiveOf(items))).flat(),
  );
}
