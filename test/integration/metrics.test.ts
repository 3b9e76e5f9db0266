import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startMetricsServer } from '../../src/http/metrics-server.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { startWorkers } from '../../src/workers/runtime.ts';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { sample, scrape } from '../helpers/prometheus.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const TRACK = `mutation($input: EventInput!) { trackEvent(input: $input) { status } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const WATCH = `subscription($userId: ID!) { recommendationsUpdated(userId: $userId, k: 2) { change { trigger } } }`;

interface LogLine {
  level: number;
  msg: string;
}
/** pino's numeric level of `error`. */
const ERROR = 50;

describe('Prometheus metrics of the gateway', () => {
  let gateway: RunningGateway;
  const logged: LogLine[] = [];
  const items = [uniqueId('m'), uniqueId('n'), uniqueId('o')];

  beforeAll(async () => {
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    gateway = await startGateway(await createTestConfig(), { logger });
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: items.map((id) => ({ id, name: id })),
    });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when /metrics is scraped then it answers Prometheus text with the default and the queue metrics', async () => {
    const response = await fetch(`${gateway.url}/metrics`);
    const text = await response.text();

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(text).toContain('# TYPE pgw_request_duration_seconds histogram');
    expect(sample(text, 'pgw_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'pgw_queue_waiting_jobs', { queue: 'events' })).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'pgw_queue_oldest_waiting_seconds', { queue: 'train' })).toBeGreaterThanOrEqual(0);
  });

  it('when events are accepted, duplicate and rejected then pgw_events_total counts each entry with its outcome and rule', async () => {
    const count = (text: string, outcome: string, rule = '') =>
      sample(text, 'pgw_events_total', { outcome, rule }) ?? 0;
    const before = await scrape(gateway.url);
    const userId = uniqueId('shopper');
    const eventId = uniqueId('evt');

    await gateway.graphql(TRACK, { input: { eventId, userId, type: 'VIEW', itemId: items[0] } });
    await gateway.graphql(TRACK, { input: { eventId, userId, type: 'VIEW', itemId: items[0] } });
    await gateway.graphql(TRACK, { input: { userId, type: 'VIEW' } });
    await gateway.graphql(TRACK_MANY, {
      inputs: [
        { userId, type: 'CLICK', itemId: items[1] },
        { eventId, userId, type: 'VIEW', itemId: items[0] },
        { userId, type: 'VIEW', itemId: items[1], occurredAt: 'yesterday' },
      ],
    });
    const after = await scrape(gateway.url);

    expect(count(after, 'accepted') - count(before, 'accepted')).toBe(2);
    expect(count(after, 'duplicate') - count(before, 'duplicate')).toBe(2);
    expect(count(after, 'rejected', 'required') - count(before, 'rejected', 'required')).toBe(1);
    expect(count(after, 'rejected', 'format') - count(before, 'rejected', 'format')).toBe(1);
  });

  it('when a query and plain routes are requested then the request histogram labels them by operation and route', async () => {
    await gateway.graphql(`query Anything { recommendations(userId: "x", k: 2) { userId } }`);
    await fetch(`${gateway.url}/health`);
    await fetch(`${gateway.url}/no/such/route`);

    const text = await scrape(gateway.url);

    const count = (kind: string, operation: string) =>
      sample(text, 'pgw_request_duration_seconds_count', { kind, operation });
    expect(count('graphql', 'query:recommendations')).toBeGreaterThanOrEqual(1);
    expect(count('graphql', 'mutation:upsertItems')).toBeGreaterThanOrEqual(1);
    expect(count('rest', '/health')).toBeGreaterThanOrEqual(1);
    expect(count('rest', 'other')).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain('Anything');
  });

  it('when an event causes a push then the push latency histogram and the push counters count it', async () => {
    const latencies = async () => sample(await scrape(gateway.url), 'pgw_event_push_latency_seconds_count') ?? 0;
    const before = await latencies();
    const userId = uniqueId('shopper');
    const subscription = subscribe(gateway.wsClient(), WATCH, { userId });
    await subscription.next();
    const open = sample(await scrape(gateway.url), 'pgw_subscriptions_open');

    await gateway.graphql(TRACK, { input: { userId, type: 'PURCHASE', itemId: items[0] } });
    await subscription.next();
    const counted = await eventually(async () => ((await latencies()) > before ? true : undefined));
    const text = await scrape(gateway.url);
    await subscription.close();

    expect(counted).toBe(true);
    expect(open).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'pgw_pushes_total', { trigger: 'SUBSCRIBED' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'pgw_pushes_total', { trigger: 'EVENT' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'pgw_event_push_latency_seconds_bucket', { le: '10' })).toBeGreaterThanOrEqual(1);
  });

  it('when clients make mistakes then nothing is logged at error, and an unexpected failure is', async () => {
    const post = (body: string) =>
      fetch(`${gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    logged.length = 0;

    await post('{"query": "{ __typename }"');
    await post(JSON.stringify({ query: '{ noSuchField }' }));
    await post(JSON.stringify({ query: TRACK, variables: { input: { userId: 'u', type: 'NOT_A_TYPE' } } }));
    await post(JSON.stringify({ query: TRACK, variables: { input: { userId: 'u', type: 'VIEW' } } }));
    await fetch(`${gateway.url}/no/such/route`);
    const mistakes = logged.splice(0);
    vi.spyOn(gateway.app.services.recommendations, 'similar').mockRejectedValueOnce(new Error('boom'));
    await gateway.graphql(`{ similarItems(itemId: "x") { score } }`);

    expect(mistakes.filter((line) => line.level >= ERROR)).toEqual([]);
    // Each mistake leaves a line: bad JSON, unknown field, bad enum value, missing itemId, unknown route.
    expect(mistakes.length).toBeGreaterThanOrEqual(5);
    expect(logged).toContainEqual(expect.objectContaining({ level: ERROR, err: expect.objectContaining({}) }));
  });
});

describe('the feature worker metrics server', () => {
  it('when scraped then it answers /metrics with the worker metrics and /health', async () => {
    const gateway = await startGateway(await createTestConfig(), { workers: false });
    const logger = createLogger('silent', 'test');
    const metrics = createMetrics(['worker']);
    const workers = await startWorkers(gateway.config, { db: gateway.app.db, logger, metrics });
    const server = await startMetricsServer({ registry: metrics.registry, port: 0, host: '127.0.0.1', logger });
    try {
      const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      const text = await response.text();
      const health = await fetch(`http://127.0.0.1:${server.port}/health`);

      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(sample(text, 'pgw_queue_waiting_jobs', { queue: 'events' })).toBeGreaterThanOrEqual(0);
      expect(text).toContain('# TYPE pgw_dependency_errors_total counter');
      expect(text).not.toContain('pgw_request_duration_seconds');
      expect(health.status).toBe(200);
    } finally {
      await server.close();
      await workers.stop();
      await gateway.stop();
    }
  });
});
