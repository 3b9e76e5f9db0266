// The worker process alone: feature worker and outbox sweep. Scale it out separately from the gateway.
import { loadConfig } from './config.ts';
import { createDb } from './db/client.ts';
import { prepareDatabase } from './db/prepare.ts';
import { createLogger } from './logger.ts';
import { handleProcessSignals } from './process.ts';
import { startWorkers } from './workers/runtime.ts';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
const logger = createLogger(config.LOG_LEVEL, 'worker');
await prepareDatabase(config.DATABASE_URL, logger);
const db = createDb(config.DATABASE_URL);
const workers = await startWorkers(config, { db, logger });
handleProcessSignals(logger, async () => {
  await workers.stop();
  await db.$disconnect();
});
logger.info('worker running');
