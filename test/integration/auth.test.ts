import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { type Client, createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildApp } from '../../src/app.ts';
import { createLogger } from '../../src/logger.ts';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const CREATE_KEY = `mutation($scope: ApiKeyScope!) { createApiKey(scope: $scope, description: "test") { id secret } }`;
const MINT = `mutation($userId: ID!, $ttl: Int) { createShopperToken(userId: $userId, ttlSeconds: $ttl) }`;
const TRACK = `mutation($input: EventInput!) { trackEvent(input: $input) { status } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const RECOMMEND = `query($userId: ID!) { recommendations(userId: $userId, k: 3) { userId } }`;
const WATCH = `subscription($userId: ID!) { recommendationsUpdated(userId: $userId, k: 3) { userId } }`;
const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;
const ANONYMOUS = 'anon_Q2hlY2tzIHRoZSBmb3JtIG9ubHk';

interface Answer {
  status: number;
  body: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
}

/** POSTs an operation with the given key and shopper token. */
async function call(
  gateway: RunningGateway,
  query: string,
  variables: Record<string, unknown>,
  auth: { key?: string; token?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (auth.key) headers.authorization = `Bearer ${auth.key}`;
  if (auth.token) headers['x-shopper-token'] = auth.token;
  const response = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: await response.json() };
}

function codeOf(answer: Answer): unknown {
  return answer.body.errors?.[0]?.extensions?.code;
}

function event(userId: string) {
  return { userId, type: 'VIEW', itemId: uniqueId('item') };
}

async function rest(gateway: RunningGateway, userId: string, auth: { key?: string; token?: string } = {}) {
  const headers: Record<string, string> = {};
  if (auth.key) headers.authorization = `Bearer ${auth.key}`;
  if (auth.token) headers['x-shopper-token'] = auth.token;
  const response = await fetch(`${gateway.url}/api/recommendations?user_id=${encodeURIComponent(userId)}&k=3`, {
    headers,
  });
  return { status: response.status, body: (await response.json()) as { error?: { code: string } } };
}

async function createKey(
  gateway: RunningGateway,
  scope: string,
  adminKey?: string,
): Promise<{ id: string; secret: string }> {
  const answer = await call(gateway, CREATE_KEY, { scope }, { key: adminKey });
  const created = answer.body.data?.createApiKey as { id: string; secret: string } | undefined;
  if (!created) throw new Error(`createApiKey failed: ${JSON.stringify(answer.body)}`);
  return created;
}

/** The same token the README shows a shop's back end minting offline from its server key's secret. */
async function mintOffline(secret: string, keyId: string, userId: string, expiresIn: string | number) {
  const key = createHmac('sha256', secret).update('pgw-shopper-token').digest();
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', kid: keyId })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key);
}

describe('API keys and scopes', () => {
  let gateway: RunningGateway;
  let admin: string;
  let server: string;
  let serverId: string;
  let publicKey: string;
  let publicId: string;
  const clients: Client[] = [];

  /** A graphql-ws client that gives up at once when the connection is refused (no retries). */
  function wsClient(connectionParams: Record<string, unknown>): Client {
    const client = createClient({
      url: `${gateway.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams,
      retryAttempts: 0,
    });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig(), { workers: false });
    // The local default lets the first admin key be created without one.
    admin = (await createKey(gateway, 'ADMIN')).secret;
    ({ id: serverId, secret: server } = await createKey(gateway, 'SERVER', admin));
    ({ id: publicId, secret: publicKey } = await createKey(gateway, 'PUBLIC', admin));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a key exists and a request sends none then it is UNAUTHENTICATED with 401, on GraphQL and REST', async () => {
    const answer = await call(gateway, '{ trending { score } }', {});
    const plain = await rest(gateway, ANONYMOUS);

    expect(answer.status).toBe(401);
    expect(codeOf(answer)).toBe('UNAUTHENTICATED');
    expect(plain.status).toBe(401);
    expect(plain.body.error?.code).toBe('UNAUTHENTICATED');
  });

  it('when the key is forged then the request is UNAUTHENTICATED', async () => {
    const forged = `pgw_admin_${'A'.repeat(43)}`;

    const answer = await call(gateway, '{ trending { score } }', {}, { key: forged });

    expect(answer.status).toBe(401);
    expect(codeOf(answer)).toBe('UNAUTHENTICATED');
  });

  it('when a key is revoked then it is refused at once', async () => {
    const { id, secret: doomed } = await createKey(gateway, 'SERVER', admin);
    const before = await call(gateway, '{ trending { score } }', {}, { key: doomed });

    const revoked = await call(gateway, 'mutation($id: ID!) { revokeApiKey(id: $id) }', { id }, { key: admin });
    const after = await call(gateway, '{ trending { score } }', {}, { key: doomed });
    const listed = await call(gateway, '{ apiKeys { id revokedAt } }', {}, { key: admin });

    expect(before.status).toBe(200);
    expect(revoked.body.data?.revokeApiKey).toBe(true);
    expect(after.status).toBe(401);
    const listing = (listed.body.data?.apiKeys ?? []) as { id: string; revokedAt: string | null }[];
    const entry = listing.find((k) => k.id === id);
    expect(entry?.revokedAt).toEqual(expect.any(String));
  });

  it('when a public key writes the catalogue, reads a profile or retrains then each is FORBIDDEN with 403', async () => {
    const upsert = await call(gateway, UPSERT, { items: [{ id: uniqueId('i'), name: 'x' }] }, { key: publicKey });
    const profile = await call(gateway, '{ shopper(userId: "u") { id } }', {}, { key: publicKey });
    const retrain = await call(gateway, 'mutation { retrainModel { jobId } }', {}, { key: publicKey });
    const keys = await call(gateway, '{ apiKeys { id } }', {}, { key: server });

    for (const answer of [upsert, profile, retrain, keys]) {
      expect(answer.status).toBe(403);
      expect(codeOf(answer)).toBe('FORBIDDEN');
    }
  });

  it('when a public key reads items, trending and similar items then it may', async () => {
    const answer = await call(
      gateway,
      '{ trending { score } similarItems(itemId: "x") { score } items(first: 1) { edges { node { id } } } }',
      {},
      { key: publicKey },
    );

    expect(answer.status).toBe(200);
    expect(answer.body.errors).toBeUndefined();
  });

  it('when a server key writes the catalogue and reads a profile then it may, but not retrain', async () => {
    const upsert = await call(gateway, UPSERT, { items: [{ id: uniqueId('i'), name: 'x' }] }, { key: server });
    const profile = await call(gateway, '{ shopper(userId: "u") { id } }', {}, { key: server });
    const retrain = await call(gateway, 'mutation { retrainModel { jobId } }', {}, { key: server });

    expect(upsert.body.errors).toBeUndefined();
    expect(profile.body.errors).toBeUndefined();
    expect(codeOf(retrain)).toBe('FORBIDDEN');
  });

  it("when a public key carries shopper A's token then it acts as A, and is FORBIDDEN as B on every operation", async () => {
    const a = uniqueId('shopper-a');
    const b = uniqueId('shopper-b');
    const minted = await call(gateway, MINT, { userId: a, ttl: 60 }, { key: server });
    const token = String(minted.body.data?.createShopperToken);
    const auth = { key: publicKey, token };

    const trackA = await call(gateway, TRACK, { input: event(a) }, auth);
    const trackB = await call(gateway, TRACK, { input: event(b) }, auth);
    const batchB = await call(gateway, TRACK_MANY, { inputs: [event(a), event(b)] }, auth);
    const listA = await call(gateway, RECOMMEND, { userId: a }, auth);
    const listB = await call(gateway, RECOMMEND, { userId: b }, auth);
    const restA = await rest(gateway, a, auth);
    const restB = await rest(gateway, b, auth);
    const ws = wsClient({ authorization: `Bearer ${publicKey}`, shopperToken: token });
    const watchA = subscribe<{ recommendationsUpdated: { userId: string } }>(ws, WATCH, { userId: a });
    const pushedA = await watchA.next();
    const watchB = subscribe(ws, WATCH, { userId: b });
    const pushedB = await watchB.next();

    expect(trackA.body.data?.trackEvent).toEqual({ status: 'ACCEPTED' });
    expect(listA.body.data?.recommendations).toEqual({ userId: a });
    expect(restA.status).toBe(200);
    expect(pushedA.data?.recommendationsUpdated.userId).toBe(a);
    for (const answer of [trackB, batchB, listB]) {
      expect(answer.status).toBe(403);
      expect(codeOf(answer)).toBe('FORBIDDEN');
    }
    expect(restB.status).toBe(403);
    expect(restB.body.error?.code).toBe('FORBIDDEN');
    expect(pushedB.errors).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'FORBIDDEN', field: 'userId' }) }),
    ]);
    await watchA.close();
  });

  it('when a public key sends no token then an anonymous id of the documented form is allowed and a guessable one is not', async () => {
    const anonymous = await call(gateway, TRACK, { input: event(ANONYMOUS) }, { key: publicKey });
    const short = await call(gateway, TRACK, { input: event('anon_123') }, { key: publicKey });
    const plainId = await call(gateway, RECOMMEND, { userId: 'user-42' }, { key: publicKey });
    const restShort = await rest(gateway, 'anon_123', { key: publicKey });

    expect(anonymous.body.data?.trackEvent).toEqual({ status: 'ACCEPTED' });
    expect(codeOf(short)).toBe('FORBIDDEN');
    expect(codeOf(plainId)).toBe('FORBIDDEN');
    expect(restShort.status).toBe(403);
  });

  it('when a shopper token is expired, forged or signed by a public key then it is UNAUTHENTICATED', async () => {
    const a = uniqueId('shopper-a');
    const expired = await mintOffline(server, serverId, a, Math.floor(Date.now() / 1000) - 10);
    const forged = await mintOffline(`${server}x`, serverId, a, '1h');
    const byPublic = await mintOffline(publicKey, publicId, a, '1h');

    const answers = await Promise.all(
      [expired, forged, byPublic].map((token) => call(gateway, RECOMMEND, { userId: a }, { key: publicKey, token })),
    );
    const plain = await rest(gateway, a, { key: publicKey, token: expired });

    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(codeOf(answer)).toBe('UNAUTHENTICATED');
    }
    expect(plain.status).toBe(401);
  });

  it('when the shop back end mints a token offline with jose from its server secret then the gateway accepts it', async () => {
    const a = uniqueId('shopper-a');
    const token = await mintOffline(server, serverId, a, '15m');

    const answer = await call(gateway, RECOMMEND, { userId: a }, { key: publicKey, token });

    expect(answer.body.data?.recommendations).toEqual({ userId: a });
  });

  it('when a WebSocket connection_init carries no key or a forged token then the connection is refused', async () => {
    const a = uniqueId('shopper-a');
    const forged = await mintOffline(`${server}x`, serverId, a, '1h');
    const outcomes = await Promise.all(
      [{}, { authorization: `Bearer ${publicKey}`, shopperToken: forged }].map(async (params) => {
        const watch = subscribe(wsClient(params), WATCH, { userId: a });
        return watch.next().then(
          () => 'pushed',
          (error: unknown) => (error instanceof Error ? error.message : (error as { code?: number }).code),
        );
      }),
    );

    expect(outcomes).toEqual([4403, 4403]);
  });
});

describe('enforcement across gateways', () => {
  let first: RunningGateway;
  let second: RunningGateway;

  beforeAll(async () => {
    const config = await createTestConfig();
    first = await startGateway(config, { workers: false });
    second = await startGateway(config, { workers: false });
  });
  afterAll(async () => {
    await Promise.all([first.stop(), second.stop()]);
  });

  it('when the first key is created on one gateway then the other enforces keys within a second', async () => {
    const open = await call(second, '{ trending { score } }', {});

    const { secret: admin } = await createKey(first, 'ADMIN');
    const created = Date.now();
    await eventually(async () => (await call(second, '{ trending { score } }', {})).status === 401, 1000);
    const elapsed = Date.now() - created;
    const withKey = await call(second, '{ trending { score } }', {}, { key: admin });

    expect(open.status).toBe(200);
    expect(elapsed).toBeLessThan(1000);
    expect(withKey.status).toBe(200);
  });
});

describe('local default', () => {
  it('when no key exists and HOST is not loopback then the gateway refuses to listen', async () => {
    const app = await buildApp(await createTestConfig({ HOST: '0.0.0.0' }), {
      logger: createLogger('silent', 'test'),
      workers: false,
    });

    await expect(app.start(0)).rejects.toThrow(/refusing to listen on 0.0.0.0 with no API key/);
    await app.stop();
  });

  it('when BOOTSTRAP_ADMIN_KEY is set then it is stored hashed at start and works as an admin key', async () => {
    const bootstrap = `pgw_admin_${uniqueId('bootstrap').padEnd(43, 'x')}`;
    const config = await createTestConfig({ HOST: '0.0.0.0', BOOTSTRAP_ADMIN_KEY: bootstrap });
    const gateway = await startGateway(config, { workers: false });

    try {
      const without = await call(gateway, '{ apiKeys { id } }', {});
      const withKey = await call(gateway, '{ apiKeys { description } }', {}, { key: bootstrap });
      const stored = await gateway.app.db.apiKey.findMany();

      expect(without.status).toBe(401);
      expect(withKey.body.data?.apiKeys).toEqual([{ description: 'BOOTSTRAP_ADMIN_KEY' }]);
      expect(JSON.stringify(stored)).not.toContain(bootstrap);
    } finally {
      await gateway.stop();
    }
  });
});

describe('ADMIN_TOKEN beside API keys', () => {
  it('when keys exist then ADMIN_TOKEN still works as an admin key, and a wrong one is UNAUTHENTICATED', async () => {
    const gateway = await startGateway(await createTestConfig({ ADMIN_TOKEN: 'sesame-long-enough' }), {
      workers: false,
    });

    try {
      await createKey(gateway, 'SERVER', 'sesame-long-enough');
      const right = await call(gateway, '{ apiKeys { scope } }', {}, { key: 'sesame-long-enough' });
      const wrong = await call(gateway, '{ apiKeys { scope } }', {}, { key: 'sesame-long-enougH' });

      expect(right.body.data?.apiKeys).toEqual([{ scope: 'SERVER' }]);
      expect(wrong.status).toBe(401);
    } finally {
      await gateway.stop();
    }
  });
});

describe('keys CLI', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig(), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when it creates an admin key then stdout is exactly the secret, and the gateway accepts it', async () => {
    const { config } = gateway;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', 'create', '--scope', 'admin'], {
      env: {
        ...process.env,
        DATABASE_URL: config.DATABASE_URL,
        REDIS_URL: config.REDIS_URL,
        REDIS_PREFIX: config.REDIS_PREFIX,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));

    expect(code).toBe(0);
    expect(stdout).toMatch(/^pgw_admin_[A-Za-z0-9_-]{43}\n$/);
    expect(stderr).toContain('API key created');
    const secret = stdout.trim();
    await eventually(async () => (await call(gateway, '{ trending { score } }', {})).status === 401, 1000);
    expect((await call(gateway, '{ apiKeys { id } }', {}, { key: secret })).status).toBe(200);
  }, 30_000);
});

describe('keys from a browser', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ CORS_ORIGINS: 'https://shop.example' }), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a listed storefront preflights /api/recommendations then the key and token headers are allowed', async () => {
    const response = await fetch(`${gateway.url}/api/recommendations?user_id=${ANONYMOUS}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://shop.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization, x-shopper-token',
      },
    });

    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(response.headers.get('access-control-allow-headers')).toBe('authorization, x-shopper-token');
  });
});
