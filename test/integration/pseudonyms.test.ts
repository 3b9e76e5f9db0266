import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config.ts';
import { pseudonymiseStoredIds } from '../../src/db/pseudonymise.ts';
import { loggableMessage, loggerOptions } from '../../src/logger.ts';
import { rebuildFeatures } from '../../src/services/feature-rebuild.ts';
import { FeatureStore } from '../../src/services/features.ts';
import { ItemAdmission } from '../../src/services/item-admission.ts';
import { ShopperIds } from '../../src/services/shopper-ids.ts';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { findMentions } from '../helpers/privacy-scan.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const KEY = 'a-test-key-that-is-long-enough-for-hmac-0123456789';
const TRACK = `mutation($input: EventInput!) { trackEvent(input: $input) { status } }`;
const TRACK_MANY = `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`;
const RECOMMEND = `query($userId: ID!) { recommendations(userId: $userId, k: 3) { userId } }`;
const PROFILE = `query($userId: ID!) { shopper(userId: $userId) { id recentItems { id } } }`;
const WATCH = `subscription($userId: ID!) { recommendationsUpdated(userId: $userId, k: 3) { userId } }`;
const UPSERT = `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`;
const ERASE = `mutation($userId: ID!) { eraseShopper(userId: $userId) { events onlineKeys } }`;

async function connect(config: Config): Promise<Redis> {
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true });
  await redis.connect();
  return redis;
}

const settled = (gateway: RunningGateway) =>
  eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 20_000);

describe('pseudonymised shopper ids (USER_ID_KEY)', () => {
  let gateway: RunningGateway;
  let redis: Redis;
  const logged: string[] = [];
  const ids = new ShopperIds(KEY);

  beforeAll(async () => {
    const logger = pino(loggerOptions('debug', 'test'), { write: (line: string) => logged.push(line) });
    gateway = await startGateway(await createTestConfig({ USER_ID_KEY: KEY }), { logger });
    redis = await connect(gateway.config);
  });
  afterAll(async () => {
    redis.disconnect();
    await gateway.stop();
  });

  it('when the shop sends its ids then only their pseudonyms are stored and logged, and answers give back its ids', async () => {
    const userId = uniqueId('shop-customer');
    const email = `${uniqueId('someone')}@example.com`;
    const item = uniqueId('item');
    const client = gateway.wsClient();
    const watching = subscribe<{ recommendationsUpdated: { userId: string } }>(client, WATCH, { userId });

    const first = await watching.next();
    await gateway.graphql(UPSERT, { items: [{ id: item, name: item }] });
    await gateway.graphql(TRACK_MANY, {
      inputs: [
        { userId, type: 'VIEW', itemId: item, context: { email } },
        { userId, type: 'VIEW', occurredAt: 'not a date', context: { email } },
      ],
    });
    // A mistake GraphQL itself reports, quoting the variable it refused.
    await gateway.graphql(TRACK, { input: { userId, itemId: item, context: { email } } });
    await settled(gateway);
    const list = await gateway.graphql<{ recommendations: { userId: string } }>(RECOMMEND, { userId });
    const profile = await gateway.graphql<{ shopper: { id: string; recentItems: { id: string }[] } }>(PROFILE, {
      userId,
    });
    const rest = await (await fetch(`${gateway.url}/api/recommendations?user_id=${userId}&k=3`)).json();

    expect(first.data?.recommendationsUpdated.userId).toBe(userId);
    expect(list.data?.recommendations.userId).toBe(userId);
    expect(profile.data?.shopper).toEqual({ id: userId, recentItems: [{ id: item }] });
    expect(rest.user_id).toBe(userId);
    expect(await findMentions(gateway.config, redis, [userId])).toEqual([]);
    const stored = await findMentions(gateway.config, redis, [ids.pseudonym(userId)]);
    expect(stored.some(({ store }) => store === 'postgres')).toBe(true);
    expect(stored.some(({ store }) => store === 'redis')).toBe(true);
    // The event keeps its context (the shop's data), but no log line carries it, nor the shop's id.
    expect(logged.some((line) => line.includes('got an invalid value'))).toBe(true);
    expect(logged.filter((line) => line.includes(userId) || line.includes(email))).toEqual([]);
    await watching.close();
  });

  it('when a pseudonymised shopper is erased then neither their id nor its pseudonym is left anywhere', async () => {
    const userId = uniqueId('erased-customer');
    await gateway.graphql(TRACK_MANY, { inputs: [{ userId, type: 'PURCHASE', itemId: uniqueId('item') }] });
    await settled(gateway);

    const erased = await gateway.graphql<{ eraseShopper: { events: number; onlineKeys: number } }>(ERASE, { userId });

    expect(erased.data?.eraseShopper.events).toBe(1);
    expect(await findMentions(gateway.config, redis, [userId, ids.pseudonym(userId)])).toEqual([]);
  });
});

describe('ids:pseudonymise (USER_ID_KEY set on a database that holds the shop’s ids)', () => {
  it('when the stored ids are rewritten and the features rebuilt then the shop’s ids find their history again', async () => {
    const plain = await createTestConfig();
    const userId = uniqueId('old-customer');
    const items = [uniqueId('item'), uniqueId('item')];
    const before = await startGateway(plain);
    await before.graphql(UPSERT, { items: items.map((id) => ({ id, name: id })) });
    await before.graphql(TRACK_MANY, { inputs: items.map((itemId) => ({ userId, type: 'VIEW', itemId })) });
    await settled(before);
    await before.stop();
    const keyed = loadConfig({ ...configEnv(plain), USER_ID_KEY: KEY });
    const redis = await connect(keyed);

    const ids = new ShopperIds(KEY);
    const after = await startGateway(keyed, { workers: false });
    try {
      const counts = await pseudonymiseStoredIds(after.app.db, (id) => ids.pseudonym(id));
      await rebuildFeatures(
        after.app.db,
        FeatureStore.fromConfig(redis, keyed),
        new ItemAdmission({ db: after.app.db, maxPlaceholders: 100 }),
      );
      const profile = await after.graphql<{ shopper: { recentItems: { id: string }[] } }>(PROFILE, { userId });

      expect(counts).toMatchObject({ shoppers: 1, events: 2 });
      expect(profile.data?.shopper.recentItems.map(({ id }) => id).sort()).toEqual([...items].sort());
      expect(await findMentions(keyed, redis, [userId])).toEqual([]);
      // Run again, it finds nothing left to rewrite.
      expect(await pseudonymiseStoredIds(after.app.db, (id) => ids.pseudonym(id))).toEqual({
        shoppers: 0,
        events: 0,
        artifacts: 0,
      });
    } finally {
      redis.disconnect();
      await after.stop();
    }
  });
});

describe('loggableMessage', () => {
  it('when GraphQL quotes a refused value then the logged message leaves it out', () => {
    const message =
      'Variable "$input" got invalid value { userId: "c-1", context: { email: "a@b.c" } }; Field "type" of required type "EventType!" was not provided.';

    expect(loggableMessage(message)).toBe(
      'Variable "$input" got an invalid value; Field "type" of required type "EventType!" was not provided.',
    );
  });
});

/** The environment a loaded configuration came from (what the next gateway on the same stores needs). */
function configEnv(config: Config): Record<string, string> {
  return {
    DATABASE_URL: config.DATABASE_URL,
    REDIS_URL: config.REDIS_URL,
    REDIS_PREFIX: config.REDIS_PREFIX,
    DEMO_DATA: 'false',
    LOG_LEVEL: 'silent',
    TRAIN_INTERVAL_MINUTES: '0',
    WORKER_METRICS_PORT: '0',
    TRAINER_METRICS_PORT: '0',
  };
}
