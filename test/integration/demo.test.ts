import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoLoad } from '../../src/services/demo.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig } from '../helpers/test-env.ts';

interface Ready {
  status: string;
  warming: { demoData?: string; features?: unknown; model?: string };
}

describe('demo data behind a listening gateway', () => {
  let gateway: RunningGateway;
  let loaded: DemoLoad;

  beforeAll(async () => {
    // With the schedule on, as in production: its next run always waits in the queue, and must not stop the
    // demo load from asking for the first model now.
    gateway = await startGateway(await createTestConfig({ TRAIN_INTERVAL_MINUTES: '60' }));
    // A slice of the bundled file keeps the test quick; the loader reads the real file.
    loaded = await gateway.app.warmUp.loadDemoData({ maxRows: 3000 });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when the catalogue is empty then the demo loads, a worker replays it and the trainer trains a first model by itself', async () => {
    const ready = await eventually(async () => {
      const body = (await (await fetch(`${gateway.url}/ready`)).json()) as Ready;
      return body.status === 'ready' && Object.keys(body.warming).length === 0 ? body : undefined;
    }, 60_000);
    const list = await gateway.graphql<{ recommendations: { strategy: string; items: unknown[] } }>(
      `{ recommendations(userId: "someone-new", k: 5) { strategy items { reason } } }`,
    );
    const versions = await gateway.app.db.modelVersion.findMany({ where: { status: 'READY' } });

    expect(loaded.events).toBe(3000);
    expect(loaded.itemIds.length).toBeGreaterThan(100);
    expect(ready.status).toBe('ready');
    expect(list.data?.recommendations.items).toHaveLength(5);
    // The replay applied the whole history (and recorded it processed), without the outbox sweep.
    expect(await gateway.app.db.event.count({ where: { processedAt: null } })).toBe(0);
    expect(versions).toHaveLength(1);
  });

  it('when the demo loaded then its items have categories from their names, and a category filter keeps to one', async () => {
    const categories = await gateway.app.db.item.groupBy({ by: ['category'], _count: true });
    const list = await gateway.graphql<{ recommendations: { items: { item: { category: string } }[] } }>(
      `{ recommendations(userId: "someone-new", k: 5, rules: { filter: { categories: ["kitchen"] } }) { items { item { category } } } }`,
    );

    expect(categories.map((c) => c.category)).toEqual(
      expect.arrayContaining(['kitchen', 'bags', 'christmas', 'other']),
    );
    expect(categories.every((c) => c.category !== null)).toBe(true);
    expect(list.data?.recommendations.items.map((r) => r.item.category)).toEqual(Array(5).fill('kitchen'));
  });

  it('when the catalogue has items then nothing is loaded again', async () => {
    expect((await gateway.app.warmUp.loadDemoData()).events).toBe(0);
  });
});
