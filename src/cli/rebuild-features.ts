// `npm run features:rebuild`: clears the online features in Redis and replays the whole event log into them
// (the trending ranking and co-visitation are partial until it ends; workers may keep running).
import { loadConfig } from '../config.ts';
import { createDb } from '../db/client.ts';
import { createLogger } from '../logger.ts';
import { connectRedis, createRedis } from '../redis.ts';
import { rebuildFeatures } from '../services/feature-rebuild.ts';
import { FeatureStore } from '../services/features.ts';
import { ItemAdmission } from '../services/item-admission.ts';

const config = loadConfig();
const logger = createLogger(config.LOG_LEVEL, 'rebuild');
const db = createDb(config.DATABASE_URL, {
  poolSize: 4,
  connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
  onError: (error) => logger.warn({ err: error.message }, 'postgres connection error'),
});
const redis = createRedis(config.REDIS_URL, 'command');
await connectRedis(redis, config.REDIS_URL);
const features = FeatureStore.fromConfig(redis, config);
const started = Date.now();
const admission = new ItemAdmission({ db, maxPlaceholders: config.MAX_PLACEHOLDER_ITEMS });
const events = await rebuildFeatures(db, features, admission);
logger.info({ events, seconds: (Date.now() - started) / 1000 }, 'online features rebuilt');
await db.$disconnect();
redis.disconnect();
