import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { FeatureStore } from '../../src/services/features.ts';
import { type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig } from '../helpers/test-env.ts';

describe('HTTP surface', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig(), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when /health and /ready are asked then both answer 200 with Postgres and Redis up', async () => {
    // The features as a worker leaves them (none runs here); without them /ready says rebuilding.
    const redis = createRedis(gateway.config.REDIS_URL, 'command');
    await connectRedis(redis, gateway.config.REDIS_URL);
    await FeatureStore.fromConfig(redis, gateway.config).markRebuilt();
    redis.disconnect();
    await gateway.app.fallback.check();

    const health = await fetch(`${gateway.url}/health`);
    const ready = await fetch(`${gateway.url}/ready`);

    expect(health.status).toBe(200);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', postgres: 'ok', redis: 'ok' });
  });

  it('when a browser opens /graphql then it gets GraphiQL', async () => {
    const response = await fetch(`${gateway.url}/graphql`, { headers: { accept: 'text/html' } });

    expect(response.status).toBe(200);
    expect(await response.text()).toContain('GraphiQL');
  });

  it('when a browser opens / then it lands on the live demo storefront', async () => {
    const response = await fetch(`${gateway.url}/`);

    expect(response.url).toBe(`${gateway.url}/demo`);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toContain('recommendationsUpdated');
  });

  it('when the body is malformed JSON then it answers 400 with a parse error and keeps serving', async () => {
    const response = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": "{ __typename }"',
    });
    const after = await gateway.graphql('{ __typename }');

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      errors: [{ message: 'POST body sent invalid JSON.', extensions: { code: 'BAD_REQUEST' } }],
    });
    expect(after).toEqual({ data: { __typename: 'Query' } });
  });

  it('when a query nests 20 levels deep then it is refused before execution', async () => {
    const nested = `{ items { edges { node ${'{ deeper '.repeat(16)}{ id }${' }'.repeat(16)} } } }`;

    const response = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      // The GraphQL-over-HTTP media type: validation failures answer 400 (plain JSON clients get 200).
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: nested }),
    });
    const body = await response.json();

    expect(response.status).toBe(400);
    expect(body.data).toBeUndefined();
    expect(body.errors).toContainEqual(
      expect.objectContaining({
        message: expect.stringMatching(/Query depth limit of 10 exceeded, found 20/),
        extensions: expect.objectContaining({ code: 'GRAPHQL_VALIDATION_FAILED' }),
      }),
    );
  });

  it('when GraphiQL introspects the schema then the depth limit lets it through', async () => {
    const body = await gateway.graphql<{ __schema: { queryType: { name: string } } }>(getIntrospectionQuery());

    expect(body.errors).toBeUndefined();
    expect(body.data?.__schema.queryType.name).toBe('Query');
  });
});
