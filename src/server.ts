// The gateway: GraphQL over HTTP and WebSocket. With --role=gateway it serves only; by default it also runs
// the workers in-process (development, demo, a single machine).
import { buildApp } from './app.ts';
import { createDb, createIngestPool } from './db/client.ts';
import { prepareDatabase } from './db/prepare.ts';
import { createLogger } from './logger.ts';
import { handleProcessSignals, loadConfigOrExit } from './process.ts';
import { loadDemoDataIfEmpty } from './services/demo.ts';

const gatewayOnly = process.argv.includes('--role=gateway');
const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'gateway');

await prepareDatabase(config.DATABASE_URL, logger);
if (config.DEMO_DATA) {
  const db = createDb(config.DATABASE_URL, 2);
  const pool = createIngestPool(config.DATABASE_URL, 2);
  await loadDemoDataIfEmpty(db, pool, logger);
  await Promise.all([db.$disconnect(), pool.end()]);
}
const app = await buildApp(config, { logger, workers: !gatewayOnly });
handleProcessSignals(logger, () => app.stop());
const { url } = await app.start(config.PORT);
logger.info({ graphiql: `${url}/graphql`, workers: !gatewayOnly }, 'gateway listening');
