import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createIngestPool, type Db } from '../../src/db/client.ts';
import { createLogger } from '../../src/logger.ts';
import { loadDemoDataIfEmpty } from '../../src/services/demo.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig } from '../helpers/test-env.ts';

describe('demo data', () => {
  let db: Db;
  let pool: pg.Pool;
  let gateway: RunningGateway;
  let loaded: number;

  beforeAll(async () => {
    const config = await createTestConfig();
    db = createDb(config.DATABASE_URL, 2);
    // A slice of the bundled file keeps the test quick; the loader reads the real file.
    pool = createIngestPool(config.DATABASE_URL, 2);
    loaded = (await loadDemoDataIfEmpty(db, pool, createLogger('silent', 'test'), { maxRows: 3000 })).events;
    gateway = await startGateway(config);
  });
  afterAll(async () => {
    await gateway.stop();
    await db.$disconnect();
    await pool.end();
  });

  it('when the catalogue is empty then the bundled catalogue and purchases load and drive recommendations', async () => {
    const body = await gateway.graphql<{ recommendations: { items: { reason: string; item: { name: string } }[] } }>(
      `{ recommendations(userId: "someone-new", k: 5) { items { reason item { name } } } }`,
    );

    expect(loaded).toBe(3000);
    expect(await db.item.count()).toBeGreaterThan(100);
    expect(body.data?.recommendations.items).toHaveLength(5);
    expect(body.data?.recommendations.items.every((r) => r.reason === 'trending')).toBe(true);
    // The worker's start-up replay applied the whole history.
    await eventually(async () => (await db.event.count({ where: { processedAt: null } })) === 0);
  });

  it('when the catalogue has items then nothing is loaded again', async () => {
    expect((await loadDemoDataIfEmpty(db, pool, createLogger('silent', 'test'))).events).toBe(0);
  });
});
