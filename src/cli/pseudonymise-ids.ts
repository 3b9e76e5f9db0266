// `npm run -s ids:pseudonymise`: when USER_ID_KEY is first set on a database that stored the shop's own
// shopper ids, rewrites them all into their pseudonyms (event log, shopper rows, model artifacts), then
// rebuilds the online features in Redis from the rewritten log. Stop the gateways and let the workers drain
// the events queue first, then stop them too; start everything with USER_ID_KEY set afterwards.
import { loadConfig } from '../config.ts';
import { createDb } from '../db/client.ts';
import { pseudonymiseStoredIds } from '../db/pseudonymise.ts';
import { createLogger } from '../logger.ts';
import { connectRedis, createRedis } from '../redis.ts';
import { rebuildFeatures } from '../services/feature-rebuild.ts';
import { FeatureStore } from '../services/features.ts';
import { ItemAdmission } from '../services/item-admission.ts';
import { ShopperIds } from '../services/shopper-ids.ts';

const config = loadConfig();
const logger = createLogger(config.LOG_LEVEL, 'pseudonymise', 2);
if (!config.USER_ID_KEY) {
  logger.error('set USER_ID_KEY (the key the gateways will run with): there is nothing to pseudonymise with');
  process.exit(2);
}
const ids = new ShopperIds(config.USER_ID_KEY);
const db = createDb(config.DATABASE_URL, {
  poolSize: 2,
  connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
  onError: (error) => logger.warn({ err: error.message }, 'postgres connection error'),
});
const redis = createRedis(config.REDIS_URL, 'command');
await connectRedis(redis, config.REDIS_URL);
const counts = await pseudonymiseStoredIds(
  db,
  (userId) => ids.pseudonym(userId),
  (progress) => logger.info(progress, 'pseudonymising stored shopper ids'),
);
logger.info(counts, 'stored shopper ids pseudonymised; rebuilding the online features from the log');
const admission = new ItemAdmission({ db, maxPlaceholders: config.MAX_PLACEHOLDER_ITEMS });
const events = await rebuildFeatures(db, FeatureStore.fromConfig(redis, config), admission);
logger.info({ ...counts, replayedEvents: events }, 'done: start the gateways and workers with USER_ID_KEY set');
await db.$disconnect();
redis.disconnect();
