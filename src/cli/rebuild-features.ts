// `npm run features:rebuild [-- --fresh]`: replays the event log into Redis. Without --fresh it fills in what
// is missing (safe while workers run); with --fresh it clears the online features first (stop workers first).
import { loadConfig } from '../config.ts';
import { createDb } from '../db/client.ts';
import { createLogger } from '../logger.ts';
import { connectRedis, createRedis } from '../redis.ts';
import { rebuildFeatures } from '../services/feature-rebuild.ts';
import { FeatureStore } from '../services/features.ts';

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
const events = await rebuildFeatures(db, features, { fresh: process.argv.includes('--fresh') });
logger.info({ events, seconds: (Date.now() - started) / 1000 }, 'online features rebuilt');
await db.$disconnect();
redis.disconnect();
