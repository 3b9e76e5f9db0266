import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { operationLabel, restRouteLabel } from '../../src/http/request-metrics.ts';
import { createMetrics, type WatchedQueue } from '../../src/metrics.ts';
import { sample } from '../helpers/prometheus.ts';

function fakeQueue(name: string, answer: () => Promise<[number, { timestamp: number; delay: number }[]]>) {
  const queue: WatchedQueue = {
    name,
    getWaitingCount: async () => (await answer())[0],
    getWaiting: async () => (await answer())[1],
  };
  return queue;
}

describe('createMetrics', () => {
  it('when a queue has waiting jobs then the gauges show their count and how long the oldest has waited', async () => {
    const metrics = createMetrics(['worker']);
    const now = Date.now();
    metrics.watchQueues([fakeQueue('events', async () => [3, [{ timestamp: now - 4000, delay: 1000 }]])]);

    const text = await metrics.registry.metrics();

    expect(sample(text, 'pgw_queue_waiting_jobs', { queue: 'events' })).toBe(3);
    const oldest = sample(text, 'pgw_queue_oldest_waiting_seconds', { queue: 'events' });
    expect(oldest).toBeGreaterThanOrEqual(3);
    expect(oldest).toBeLessThan(4);
  });

  it('when a queue does not answer then the scrape still completes, without that queue', async () => {
    const metrics = createMetrics(['worker']);
    metrics.watchQueues([fakeQueue('events', () => new Promise(() => {})), fakeQueue('train', async () => [0, []])]);

    const started = Date.now();
    const text = await metrics.registry.metrics();

    expect(Date.now() - started).toBeLessThan(2000);
    expect(sample(text, 'pgw_queue_waiting_jobs', { queue: 'events' })).toBeUndefined();
    expect(sample(text, 'pgw_queue_waiting_jobs', { queue: 'train' })).toBe(0);
    expect(sample(text, 'pgw_queue_oldest_waiting_seconds', { queue: 'train' })).toBe(0);
  });

  it('when no model serves then the model gauges are absent, and present once one does', async () => {
    const metrics = createMetrics(['gateway']);
    const before = await metrics.registry.metrics();

    metrics.setServingModel(7, 0.25);
    const serving = await metrics.registry.metrics();
    metrics.setServingModel(8, undefined);
    const withoutNdcg = await metrics.registry.metrics();

    expect(sample(before, 'pgw_model_version_serving')).toBeUndefined();
    expect(sample(serving, 'pgw_model_version_serving')).toBe(7);
    expect(sample(serving, 'pgw_model_holdout_ndcg10')).toBe(0.25);
    expect(sample(withoutNdcg, 'pgw_model_version_serving')).toBe(8);
    expect(sample(withoutNdcg, 'pgw_model_holdout_ndcg10')).toBeUndefined();
  });

  it('when a process plays some roles then its registry shows only their metrics', async () => {
    const worker = await createMetrics(['worker']).registry.metrics();
    const trainer = await createMetrics(['trainer']).registry.metrics();

    expect(worker).toContain('pgw_dependency_errors_total');
    expect(worker).not.toContain('pgw_request_duration_seconds');
    expect(worker).not.toContain('pgw_training_duration_seconds');
    expect(trainer).toContain('pgw_training_duration_seconds');
    expect(trainer).not.toContain('pgw_events_total');
  });
});

describe('request labels', () => {
  it('when a document has aliases, fragments and several root fields then the label is its type and sorted field names', () => {
    const document = parse(`
      query Shop { b: recommendations(userId: "u") { userId } ...Items ... on Query { similarItems(itemId: "i") { score } } }
      fragment Items on Query { items { edges { node { id } } } }
      mutation Other { trackEvent(input: {}) { status } }`);

    expect(operationLabel(document, 'Shop')).toBe('query:items,recommendations,similarItems');
    expect(operationLabel(document, 'Other')).toBe('mutation:trackEvent');
    expect(operationLabel(document, 'Missing')).toBe('unknown');
  });

  it('when a path is not one of the routes then it is labelled other', () => {
    expect(restRouteLabel('/api/recommendations')).toBe('/api/recommendations');
    expect(restRouteLabel('/wp-admin/login.php')).toBe('other');
  });
});
