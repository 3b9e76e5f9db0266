import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

// Debian's chromium (.ci/run installs it); playwright never downloads a browser here.
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** A page load in Chromium competes with the gateway for two cores; GraphiQL alone is a 9 MB page. */
const BROWSER_TEST_MS = 60_000;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;

/** Console errors, uncaught exceptions, failed requests and error responses of a page, as readable lines. */
function collectProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`exception: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  return problems;
}

/**
 * A /metrics body like the gateway's at its `step`-th scrape: 20 more accepted events and 10 more pushes per
 * scrape, each push between 5 and 25 ms after its event. Served in place of the real /metrics, so the charts
 * get known counters whatever else the gateway happens to export.
 */
function metricsScrape(step: number): string {
  const pushes = 10 * step;
  return `# TYPE pgw_events_total counter
pgw_events_total{outcome="accepted",rule=""} ${20 * step}
pgw_events_total{outcome="duplicate",rule=""} ${step}
pgw_events_total{outcome="rejected",rule="required"} 0
# TYPE pgw_event_push_latency_seconds histogram
pgw_event_push_latency_seconds_bucket{le="0.005"} 0
pgw_event_push_latency_seconds_bucket{le="0.025"} ${pushes}
pgw_event_push_latency_seconds_bucket{le="+Inf"} ${pushes}
pgw_event_push_latency_seconds_sum ${pushes * 0.015}
pgw_event_push_latency_seconds_count ${pushes}
pgw_queue_waiting_jobs{queue="events"} 3
pgw_queue_waiting_jobs{queue="train"} 0
pgw_queue_oldest_waiting_seconds{queue="events"} 0.2
pgw_subscriptions_open 4
pgw_pushes_total{trigger="EVENT"} ${pushes}
pgw_model_version_serving 2
`;
}

describe('browser pages (headless Chromium)', () => {
  let gateway: RunningGateway;
  let browser: Browser;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  it(
    'when /dashboard opens then it plots the model versions, lists trending items and shows live metrics, without errors',
    async () => {
      const seeded = await Promise.all(
        [
          { ndcg: 0.21, recall: 0.3, coverage: 0.4 },
          { ndcg: 0.25, recall: 0.34, coverage: 0.45 },
        ].map(({ ndcg, recall, coverage }) =>
          gateway.app.db.modelVersion.create({
            data: {
              algorithm: 'als',
              status: 'READY',
              params: {},
              finishedAt: new Date(),
              metrics: { 'ndcg@10': ndcg, 'recall@10': recall, 'precision@10': 0.05, coverage, users: 100 },
              timings: { readSeconds: 0.5, holdoutSeconds: 1.2, trainSeconds: 3.4, indexSeconds: 0.3 },
            },
          }),
        ),
      );
      const item = { id: uniqueId('trend'), name: `Trending teapot ${uniqueId('n')}` };
      await gateway.graphql(UPSERT, { items: [{ ...item, price: 9.5, currency: 'EUR' }] });
      await gateway.graphql(TRACK_MANY, {
        inputs: Array.from({ length: 3 }, () => ({ userId: uniqueId('shopper'), type: 'PURCHASE', itemId: item.id })),
      });
      await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0);
      context = await browser.newContext();
      const page = await context.newPage();
      const problems = collectProblems(page);
      let scrapes = 0;
      await page.route(`${gateway.url}/metrics`, (route) =>
        route.fulfill({ contentType: 'text/plain; version=0.0.4', body: metricsScrape(++scrapes) }),
      );

      await page.goto(`${gateway.url}/dashboard`);

      await page.locator('#model-chart[data-versions="2"]').waitFor({ timeout: 15_000 });
      const canvas = await page.locator('#model-chart canvas').boundingBox();
      expect(canvas?.width).toBeGreaterThan(100);
      expect(canvas?.height).toBeGreaterThan(100);
      expect(await page.locator('#model-chart .empty').isHidden()).toBe(true);
      const versions = await page.locator('#versions tr').allTextContents();
      expect(versions).toHaveLength(2);
      expect(versions[0]).toContain(`v${seeded[1]!.id}`);
      expect(versions[0]).toContain('3.40');
      await page.locator('#trending tr', { hasText: item.name }).waitFor({ timeout: 15_000 });
      // Two scrapes make a rate: 20 accepted events per scrape, about 2 s apart.
      await page.waitForFunction(() => /^\d/.test(document.getElementById('tile-ingest')?.textContent ?? ''), null, {
        timeout: 15_000,
      });
      expect(await page.locator('#tile-p50').textContent()).toMatch(/^\d+(\.\d)? ms$/);
      expect(await page.locator('#tile-subscriptions').textContent()).toBe('4');
      expect(await page.locator('#ingest-chart .empty').isHidden()).toBe(true);
      expect(problems).toEqual([]);
    },
    BROWSER_TEST_MS,
  );

  it('when /metrics exports none of the gateway metrics then the dashboard says "no data" and keeps running', async () => {
    context = await browser.newContext();
    const page = await context.newPage();
    const problems = collectProblems(page);
    await page.route(`${gateway.url}/metrics`, (route) =>
      route.fulfill({ contentType: 'text/plain; version=0.0.4', body: 'process_cpu_seconds_total 1.5\n' }),
    );

    await page.goto(`${gateway.url}/dashboard`);

    await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 15_000 });
    expect(await page.locator('#tile-subscriptions').textContent()).toBe('no data');
    expect(await page.locator('#tile-p99').textContent()).toBe('no data');
    expect(await page.locator('#freshness-chart .empty').isVisible()).toBe(true);
    expect(problems).toEqual([]);
  });

  it(
    'when GraphiQL opens at /graphql then its editor renders with every request going to the gateway',
    async () => {
      context = await browser.newContext();
      const elsewhere: string[] = [];
      await context.route('**/*', (route) => {
        const url = new URL(route.request().url());
        if (url.hostname === '127.0.0.1') return route.continue();
        elsewhere.push(url.href);
        return route.abort();
      });
      const page = await context.newPage();
      const requested: string[] = [];
      page.on('request', (request) => requested.push(request.url()));

      await page.goto(`${gateway.url}/graphql`);

      // Without its scripts GraphiQL never renders: wait, then name any outside host the page tried first.
      const rendered = await page
        .locator('.graphiql-container .graphiql-query-editor .monaco-editor')
        .waitFor({ timeout: 20_000 })
        .then(
          () => true,
          () => false,
        );
      expect(elsewhere).toEqual([]);
      expect(rendered).toBe(true);
      const network = requested.filter((url) => /^(https?|wss?):/.test(url));
      expect(network.length).toBeGreaterThan(0);
      expect(network.filter((url) => new URL(url).hostname !== '127.0.0.1')).toEqual([]);
    },
    BROWSER_TEST_MS,
  );
  it(
    'when /dashboard/experiments opens then it lists the variants against the control and plots their conversion, without errors',
    async () => {
      const id = uniqueId('page');
      const item = { id: uniqueId('exp-item'), name: 'Experiment teapot', price: 12 };
      await gateway.graphql(UPSERT, { items: [item] });
      const started = await gateway.graphql(
        `mutation($input: ExperimentInput!) { upsertExperiment(input: $input) { id } }`,
        {
          input: {
            id,
            variants: [
              { name: 'control', weight: 1 },
              { name: 'trending', weight: 1, strategy: 'trending' },
            ],
          },
        },
      );
      expect(started.errors).toBeUndefined();
      const events = [];
      for (let i = 0; i < 20; i++) {
        const list = await gateway.app.services.recommendations.recommend(uniqueId('visitor'), 3);
        events.push({
          userId: list.userId,
          type: 'CLICK' as const,
          itemId: item.id,
          recommendationId: list.recommendationId,
        });
        if (i % 3 === 0) events.push({ userId: list.userId, type: 'PURCHASE' as const, itemId: item.id, value: 12 });
      }
      await gateway.app.services.events.trackMany(events);
      await gateway.app.services.experiments.flushImpressions();
      context = await browser.newContext();
      const page = await context.newPage();
      const problems = collectProblems(page);

      await page.goto(`${gateway.url}/dashboard/experiments?id=${id}`);

      await page.locator('#variants tr', { hasText: 'control' }).waitFor({ timeout: 15_000 });
      const rows = await page.locator('#variants tr').allTextContents();
      expect(rows).toHaveLength(2);
      expect(rows[0]).toContain('(control)');
      expect(await page.locator('#summary').textContent()).toContain('sample ratio');
      const canvas = await page.locator('#chart canvas').boundingBox();
      expect(canvas?.width).toBeGreaterThan(100);
      expect(problems).toEqual([]);
      await gateway.graphql(`mutation($id: ID!) { stopExperiment(id: $id) { id } }`, { id });
    },
    BROWSER_TEST_MS,
  );
});
