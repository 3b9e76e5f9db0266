import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { findMentions } from '../helpers/privacy-scan.ts';
import { createTestConfig, purchasesOf, tasteGroupPurchases, uniqueId } from '../helpers/test-env.ts';

const SET_CONSENT = `mutation($userId: ID!, $personalization: Boolean!) {
  setConsent(userId: $userId, personalization: $personalization) { userId personalization } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const PROFILE = `query($userId: ID!) { shopper(userId: $userId) { recentItems { id } boughtItemIds } }`;
const RECOMMEND = `query($userId: ID!) { recommendations(userId: $userId, k: 3) { strategy } }`;
const RETRAIN = `mutation { retrainModel(wait: true, params: { factors: 8, lambda: 10 }) { version { id } } }`;
const CREATE_KEY = `mutation($scope: ApiKeyScope!) { createApiKey(scope: $scope) { id secret } }`;
const MINT = `mutation($userId: ID!) { createShopperToken(userId: $userId) }`;

interface Profile {
  shopper: { recentItems: { id: string }[]; boughtItemIds: string[] };
}

async function connect(config: Config): Promise<Redis> {
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true });
  await redis.connect();
  return redis;
}

/** The shopper's Redis keys (under the test prefix), by their last name part. */
async function shopperKeys(redis: Redis, config: Config, userId: string): Promise<string[]> {
  const keys = await redis.keys(`${config.REDIS_PREFIX}:f:u:${userId}:*`);
  return keys.map((key) => key.slice(key.lastIndexOf(':') + 1)).sort();
}

function setUp(overrides: Record<string, string> = {}) {
  const context = {} as { gateway: RunningGateway; redis: Redis };
  beforeAll(async () => {
    context.gateway = await startGateway(await createTestConfig(overrides));
    context.redis = await connect(context.gateway.config);
  });
  afterAll(async () => {
    context.redis.disconnect();
    await context.gateway.stop();
  });
  return context;
}

const settled = (gateway: RunningGateway) =>
  eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 20_000);

describe('consent, CONSENT_DEFAULT=granted (the default)', () => {
  const context = setUp();
  const aItems = Array.from({ length: 6 }, (_, i) => uniqueId(`a${i}`));

  it('when a shopper withdraws consent then what was built of them goes, their events stay, and new ones count toward trending only', async () => {
    const { gateway, redis } = context;
    const userId = uniqueId('withdrawing');
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: aItems.map((id) => ({ id, name: id })),
    });
    await gateway.graphql(TRACK_MANY, {
      inputs: [
        ...tasteGroupPurchases(5, [{ label: 'shopper-a', items: aItems, shoppers: 30 }]),
        ...purchasesOf(userId, aItems.slice(0, 3)),
      ],
    });
    await settled(gateway);
    await gateway.graphql(RETRAIN);
    expect((await gateway.app.db.modelArtifact.findFirstOrThrow()).userIds).toContain(userId);

    const withdrawn = await gateway.graphql(SET_CONSENT, { userId, personalization: false });
    const newItem = uniqueId('fresh');
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'PURCHASE', itemId: newItem }] });
    await settled(gateway);

    expect(withdrawn.data).toEqual({ setConsent: { userId, personalization: false } });
    const profile = await gateway.graphql<Profile>(PROFILE, { userId });
    expect(profile.data?.shopper).toEqual({ recentItems: [], boughtItemIds: [] });
    // Only the no-consent marker is left of them in Redis, and no model holds their vector.
    expect(await shopperKeys(redis, gateway.config, userId)).toEqual(['np']);
    expect((await gateway.app.db.modelArtifact.findFirstOrThrow()).userIds).not.toContain(userId);
    const list = await gateway.graphql<{ recommendations: { strategy: string } }>(RECOMMEND, { userId });
    expect(list.data?.recommendations.strategy).toBe('trending');
    // Their events are still in the log, and the new one counted toward trending.
    expect(await gateway.app.db.event.count({ where: { userId } })).toBe(4);
    expect(await redis.zscore(`${gateway.config.REDIS_PREFIX}:f:trending`, newItem)).not.toBeNull();
  });

  it('when an event carries consent false then it withdraws as setConsent does, and consent true builds again from then on', async () => {
    const { gateway, redis } = context;
    const userId = uniqueId('by-event');
    const [before, during, after] = [uniqueId('before'), uniqueId('during'), uniqueId('after')];
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'VIEW', itemId: before }] });
    await settled(gateway);

    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'VIEW', itemId: during, consent: false }] });
    await settled(gateway);
    expect(await shopperKeys(redis, gateway.config, userId)).toEqual(['np']);
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'VIEW', itemId: after, consent: true }] });
    await settled(gateway);

    // Granted again: only what came after it builds the profile (nothing from while it was withheld).
    const recent = await redis.zrange(`${gateway.config.REDIS_PREFIX}:f:u:${userId}:recent`, 0, -1);
    expect(recent).toEqual([after]);
    expect(await shopperKeys(redis, gateway.config, userId)).not.toContain('np');
  });
});

describe('consent, CONSENT_DEFAULT=required', () => {
  const context = setUp({ CONSENT_DEFAULT: 'required' });

  it('when a shopper never consented then their events count toward trending but build nothing and train nothing', async () => {
    const { gateway, redis } = context;
    const userId = uniqueId('silent');
    const consenting = uniqueId('consenting');
    const items = Array.from({ length: 4 }, (_, i) => uniqueId(`i${i}`));
    await gateway.graphql(SET_CONSENT, { userId: consenting, personalization: true });

    await gateway.graphql(TRACK_MANY, {
      inputs: [...purchasesOf(userId, items), ...purchasesOf(consenting, items.slice(0, 2))],
    });
    await settled(gateway);
    await gateway.graphql(RETRAIN);

    for (const itemId of items) {
      expect(await redis.zscore(`${gateway.config.REDIS_PREFIX}:f:trending`, itemId)).not.toBeNull();
    }
    expect(await shopperKeys(redis, gateway.config, userId)).toEqual(['np']);
    expect(await gateway.app.db.user.count({ where: { id: userId } })).toBe(0);
    const artifact = await gateway.app.db.modelArtifact.findFirstOrThrow();
    expect(artifact.userIds).toEqual([consenting]);
    const list = await gateway.graphql<{ recommendations: { strategy: string } }>(RECOMMEND, { userId });
    expect(list.data?.recommendations.strategy).toBe('trending');
    // Nothing of theirs but their events (the log) and the marker's name.
    const mentions = await findMentions(gateway.config, redis, [userId]);
    expect(mentions.every(({ where }) => where.startsWith('Event: ') || where.includes(`${userId}:np`))).toBe(true);
  });

  it('when a public key sets consent then it may do so only for the shopper its token names', async () => {
    const { gateway } = context;
    const admin = await gateway.app.services.keys.create('ADMIN', 'test');
    const call = async (query: string, variables: Record<string, unknown>, key: string, token?: string) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
      if (token) headers['x-shopper-token'] = token;
      const response = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query, variables }),
      });
      return (await response.json()) as {
        data?: Record<string, unknown>;
        errors?: { extensions?: { code?: string } }[];
      };
    };
    const server = (await call(CREATE_KEY, { scope: 'SERVER' }, admin.secret)).data?.createApiKey as { secret: string };
    const publicKey = (await call(CREATE_KEY, { scope: 'PUBLIC' }, admin.secret)).data?.createApiKey as {
      secret: string;
    };
    const userId = uniqueId('own');
    const token = (await call(MINT, { userId }, server.secret)).data?.createShopperToken as string;

    const own = await call(SET_CONSENT, { userId, personalization: true }, publicKey.secret, token);
    const other = await call(
      SET_CONSENT,
      { userId: uniqueId('other'), personalization: true },
      publicKey.secret,
      token,
    );

    expect(own.data).toEqual({ setConsent: { userId, personalization: true } });
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
