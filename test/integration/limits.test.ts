import { request as httpRequest } from 'node:http';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { clientKey, RateLimits } from '../../src/http/rate-limit.ts';
import { createLogger } from '../../src/logger.ts';
import { createRedis } from '../../src/redis.ts';
import { type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { createTestConfig, redisTestPrefix, uniqueId } from '../helpers/test-env.ts';

const GRAPHQL_JSON = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
const RECOMMENDATIONS = `subscription Watch($userId: ID!) { recommendationsUpdated(userId: $userId, k: 3) { userId } }`;

/** A GraphQL validation error whose message contains `text`. */
const refusal = (text: string) =>
  expect.objectContaining({
    message: expect.stringContaining(text),
    extensions: expect.objectContaining({ code: 'GRAPHQL_VALIDATION_FAILED' }),
  });

/** POSTs a GraphQL body as raw text and answers status, headers and parsed JSON. */
async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { ...GRAPHQL_JSON, ...headers }, body });
  return {
    status: response.status,
    headers: response.headers,
    json: (await response.json()) as { errors?: unknown[]; [key: string]: unknown },
  };
}

/** A GraphQL POST from a chosen local source address (127.0.0.0/8 is all loopback on Linux): another client. */
function postFrom(localAddress: string, url: string, query: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ query });
    const req = httpRequest(
      `${url}/graphql`,
      { method: 'POST', localAddress, headers: { ...GRAPHQL_JSON, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** Opens a raw WebSocket with the given headers; resolves with the upgrade's outcome. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ opened: boolean; status?: number }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', { headers });
    socket.once('open', () => {
      socket.close();
      resolve({ opened: true });
    });
    socket.once('unexpected-response', (_req, res) => {
      resolve({ opened: false, status: res.statusCode });
      socket.terminate();
    });
    socket.once('error', () => resolve({ opened: false }));
  });
}

describe('query size limits', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ CORS_ORIGINS: 'https://shop.example' }), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  // 1,000 aliases are some 12,000 tokens: the token limit refuses the document while parsing, before an AST
  // of it exists (a parse error); the alias limit is the next line of defence (below).
  it('when one request holds 1,000 aliases of recommendations(k: 100) then it is refused before execution, fast', async () => {
    const fields = Array.from({ length: 1000 }, (_, i) => `r${i}: recommendations(userId: "u", k: 100) { userId }`);
    const started = performance.now();

    const { status, json } = await post(gateway.url, JSON.stringify({ query: `{ ${fields.join(' ')} }` }));

    expect(performance.now() - started).toBeLessThan(1000);
    expect(status).toBe(400);
    expect(json).toMatchObject({
      errors: [
        { message: expect.stringContaining('Token limit of 2000'), extensions: { code: 'GRAPHQL_PARSE_FAILED' } },
      ],
    });
  });

  it('when aliases exceed MAX_ALIASES within the token limit then the alias limit refuses it', async () => {
    const fields = Array.from({ length: 30 }, (_, i) => `r${i}: trending(k: 1) { score }`);

    const { status, json } = await post(gateway.url, JSON.stringify({ query: `{ ${fields.join(' ')} }` }));

    expect(status).toBe(400);
    expect(json.errors).toContainEqual(refusal('Aliases limit of 20'));
  });

  it('when a document exceeds MAX_TOKENS then it is refused while parsing', async () => {
    const query = `{ ${'__typename '.repeat(2500)}}`;

    const { status, json } = await post(gateway.url, JSON.stringify({ query }));

    expect(status).toBe(400);
    expect(json).toMatchObject({ errors: [{ message: expect.stringContaining('Token limit of 2000') }] });
  });

  it('when an operation is estimated over MAX_COST then it is refused before execution', async () => {
    const page = 'items(first: 100) { edges { node { id name category price inStock } } }';

    const { status, json } = await post(gateway.url, JSON.stringify({ query: `{ a: ${page} b: ${page} }` }));

    expect(status).toBe(400);
    expect(json.errors).toContainEqual(refusal('Cost limit of 5000'));
  });

  it('when an operation holds more than MAX_DIRECTIVES directives then it is refused', async () => {
    const query = `{ ${'__typename @include(if: true) '.repeat(60)}}`;

    const { status, json } = await post(gateway.url, JSON.stringify({ query }));

    expect(status).toBe(400);
    expect(json.errors).toContainEqual(refusal('Directives limit of 50'));
  });

  it("when GraphiQL's introspection query and the README's query are sent then both pass the limits", async () => {
    const readme =
      '{ recommendations(userId: "12347", k: 3) { recommendationId strategy generatedAt items { score reason item { id name price } } } }';

    const introspection = await post(gateway.url, JSON.stringify({ query: getIntrospectionQuery() }));
    const example = await post(gateway.url, JSON.stringify({ query: readme }));

    expect(introspection.status).toBe(200);
    expect(example).toMatchObject({
      status: 200,
      json: { data: { recommendations: { strategy: expect.any(String) } } },
    });
  });

  it('when a subscribe message over WebSocket breaks a limit then it gets the validation error and the socket stays', async () => {
    const client = gateway.wsClient();
    const aliases = Array.from({ length: 30 }, (_, i) => `u${i}: userId`);
    const refused = subscribe(
      client,
      `subscription { recommendationsUpdated(userId: "u", k: 1) { ${aliases.join(' ')} } }`,
      {},
    );
    const allowed = subscribe(client, RECOMMENDATIONS, { userId: uniqueId('u') });

    await expect(refused.next()).rejects.toContainEqual(refusal('Aliases limit of 20'));
    expect(await allowed.next()).toMatchObject({ data: { recommendationsUpdated: { userId: expect.any(String) } } });
    await allowed.close();
  });

  it('when the body is 10 MB then it answers 413 PAYLOAD_TOO_LARGE without reading it, and keeps serving', async () => {
    const body = JSON.stringify({ query: '{ __typename }', variables: { padding: 'x'.repeat(10 * 1024 * 1024) } });

    const { status, json } = await post(gateway.url, body);
    const after = await gateway.graphql('{ __typename }');

    expect(status).toBe(413);
    expect(json).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    expect(after).toEqual({ data: { __typename: 'Query' } });
  });

  it('when a chunked body without a length streams past the cap then it answers 413, and a small one passes', async () => {
    const chunked = (text: string) =>
      fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: GRAPHQL_JSON,
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(text));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const big = JSON.stringify({ query: '{ __typename }', variables: { padding: 'x'.repeat(2 * 1024 * 1024) } });

    const refused = await chunked(big);
    const passed = await chunked(JSON.stringify({ query: '{ __typename }' }));

    expect(refused.status).toBe(413);
    expect(await passed.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('when a trackEvents batch of MAX_BATCH_SIZE events with context is sent then it fits the body cap', async () => {
    const userId = uniqueId('u');
    const inputs = Array.from({ length: 1000 }, (_, i) => ({
      eventId: `${uniqueId('evt')}-${i}`,
      userId,
      type: 'VIEW',
      itemId: `item-${i}`,
      sessionId: uniqueId('s'),
      occurredAt: new Date().toISOString(),
      context: { page: '/product/item', device: 'mobile', referrer: 'https://shop.example/category/kitchen' },
    }));
    const body = JSON.stringify({
      query: 'mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }',
      variables: { inputs },
    });

    const { status } = await post(gateway.url, body);

    expect(Buffer.byteLength(body)).toBeLessThan(gateway.config.MAX_BODY_BYTES / 2);
    expect(status).toBe(200);
  });

  it('when a page on an unlisted origin calls then it gets no CORS headers; a listed origin gets them with credentials', async () => {
    const query = JSON.stringify({ query: '{ __typename }' });

    const unlisted = await post(gateway.url, query, { origin: 'https://evil.example' });
    const listed = await post(gateway.url, query, { origin: 'https://shop.example' });

    expect(unlisted.headers.get('access-control-allow-origin')).toBeNull();
    expect(unlisted.headers.get('access-control-allow-credentials')).toBeNull();
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(listed.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('when a page calls the plain JSON endpoint then only a listed origin gets CORS headers', async () => {
    const call = (origin: string) =>
      fetch(`${gateway.url}/api/recommendations?user_id=${uniqueId('u')}&k=1`, { headers: { origin } });

    const unlisted = await call('https://evil.example');
    const listed = await call('https://shop.example');

    expect(unlisted.headers.get('access-control-allow-origin')).toBeNull();
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(listed.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('when a WebSocket upgrade comes from an unlisted origin then it is refused; same-origin, listed and no-Origin clients connect', async () => {
    const host = new URL(gateway.url).host;

    const unlisted = await upgrade(gateway.url, { origin: 'https://evil.example' });
    const listed = await upgrade(gateway.url, { origin: 'https://shop.example' });
    const sameOrigin = await upgrade(gateway.url, { origin: `http://${host}` });
    const node = await upgrade(gateway.url);

    expect(unlisted).toEqual({ opened: false, status: 403 });
    expect(listed.opened).toBe(true);
    expect(sameOrigin.opened).toBe(true);
    expect(node.opened).toBe(true);
  });
});

describe('CORS_ORIGINS=*', () => {
  it('when any origin calls then it is allowed, never with credentials', async () => {
    const gateway = await startGateway(await createTestConfig({ CORS_ORIGINS: '*' }), { workers: false });

    try {
      const { headers } = await post(gateway.url, JSON.stringify({ query: '{ __typename }' }), {
        origin: 'https://any.example',
      });

      expect(headers.get('access-control-allow-origin')).toBe('https://any.example');
      expect(headers.get('access-control-allow-credentials')).toBeNull();
    } finally {
      await gateway.stop();
    }
  });
});

describe('INTROSPECTION=false, GRAPHIQL=false', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ INTROSPECTION: 'false', GRAPHIQL: 'false' }), {
      workers: false,
    });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when an introspection query is sent then it is refused, and ordinary queries still run', async () => {
    const introspection = await post(gateway.url, JSON.stringify({ query: getIntrospectionQuery() }));
    const typeQuery = await post(gateway.url, JSON.stringify({ query: '{ __type(name: "Query") { name } }' }));
    const plain = await gateway.graphql('{ __typename }');

    expect(introspection.status).toBe(400);
    expect(introspection.json.errors).toContainEqual(refusal('introspection has been disabled'));
    expect(typeQuery.status).toBe(400);
    expect(plain).toEqual({ data: { __typename: 'Query' } });
  });

  it('when a browser opens /graphql then it gets no GraphiQL page', async () => {
    const response = await fetch(`${gateway.url}/graphql`, { headers: { accept: 'text/html' } });

    expect(await response.text()).not.toContain('GraphiQL');
  });
});

describe('rate limits', () => {
  let gateway: RunningGateway;

  // A gateway per test: each starts with full budgets (its own Redis prefix), whatever the others spent.
  beforeEach(async () => {
    const config = await createTestConfig({ RATE_LIMIT_PER_SECOND: '3', RATE_LIMIT_BURST: '2' });
    gateway = await startGateway(config, { workers: false });
  });
  afterEach(async () => {
    await gateway.stop();
  });

  it('when one client bursts past its budget then it gets 429 RATE_LIMITED with Retry-After; another client is unaffected', async () => {
    const burst = await Promise.all(
      Array.from({ length: 12 }, () => post(gateway.url, JSON.stringify({ query: '{ __typename }' }))),
    );
    const other = await postFrom('127.0.0.2', gateway.url, '{ __typename }');

    const limited = burst.filter(({ status }) => status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0]?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited[0]?.json).toMatchObject({
      errors: [{ extensions: { code: 'RATE_LIMITED', retryAfter: expect.any(Number) } }],
    });
    expect(other.status).toBe(200);
  });

  it('when the REST endpoint is flooded then it answers 429 in the plain endpoints shape', async () => {
    const responses = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${gateway.url}/api/recommendations?user_id=u&k=1`, { headers: { 'x-flood': '1' } }),
      ),
    );
    const limited = responses.find((response) => response.status === 429);

    expect(limited?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await limited?.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
  });

  it('when one connection floods subscribe messages then the ones over budget get RATE_LIMITED', async () => {
    const client = gateway.wsClient();
    const subscriptions = Array.from({ length: 12 }, () =>
      subscribe(client, RECOMMENDATIONS, { userId: uniqueId('u') }),
    );

    const outcomes = await Promise.allSettled(subscriptions.map((subscription) => subscription.next()));

    const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ reason: [{ extensions: { code: 'RATE_LIMITED' } }] });
    await Promise.all(subscriptions.map((subscription) => subscription.close()));
  });

  it('when many connections open at once from one client then upgrades over budget are refused with 429', async () => {
    const attempts = await Promise.all(Array.from({ length: 12 }, () => upgrade(gateway.url)));

    expect(attempts.filter(({ status }) => status === 429).length).toBeGreaterThan(0);
  });

  it('when /health is polled beyond the budget then probes are never limited', async () => {
    const responses = await Promise.all(Array.from({ length: 12 }, () => fetch(`${gateway.url}/health`)));

    expect(responses.every((response) => response.status === 200)).toBe(true);
  });
});

describe('RateLimits', () => {
  const logger = createLogger('silent', 'test');

  it('when two keys spend their budgets then each is limited on its own, across limiter instances sharing Redis', async () => {
    const config = await createTestConfig();
    const redis = createRedis(config.REDIS_URL, 'command');
    await redis.connect();
    const options = { redis, prefix: config.REDIS_PREFIX, perSecond: 2, burst: 0, logger };
    // Two gateways: two limiters over one Redis.
    const [first, second] = [new RateLimits(options), new RateLimits(options)];

    try {
      const a = [await first.consume('ip:a'), await second.consume('ip:a'), await first.consume('ip:a')];
      const b = await second.consume('ip:b');

      expect(a.map((decision) => decision.allowed)).toEqual([true, true, false]);
      expect(a[2]).toMatchObject({ retryAfterSeconds: 1 });
      expect(b.allowed).toBe(true);
    } finally {
      redis.disconnect();
    }
  });

  it('when Redis does not answer then it fails open to a per-process budget and warns', async () => {
    const warnings: string[] = [];
    const recording = { warn: (...args: unknown[]) => void warnings.push(String(args[1])) };
    // Never connected: the limiter must not wait for it.
    const redis = createRedis('redis://127.0.0.1:1', 'command');
    const limits = new RateLimits({ redis, prefix: redisTestPrefix('rl'), perSecond: 1, burst: 0, logger: recording });

    const decisions = [await limits.consume('ip:a'), await limits.consume('ip:a')];

    expect(decisions.map((decision) => decision.allowed)).toEqual([true, false]);
    expect(warnings).toEqual([expect.stringContaining('counting in this process only')]);
    redis.disconnect();
  });

  it('when a request comes in then its client key is its address, not a forwarding header', () => {
    const request = { socket: { remoteAddress: '203.0.113.7' }, headers: { 'x-forwarded-for': '10.0.0.1' } };

    const key = clientKey(request);

    expect(key).toBe('ip:203.0.113.7');
  });
});
