// The worker process alone: feature worker and outbox sweep. Scale it out separately from the gateway.
import { createDb } from './db/client.ts';
import { prepareDatabase } from './db/prepare.ts';
import { createLogger } from './logger.ts';
import { handleProcessSignals, loadConfigOrExit } from './process.ts';
import { startWorkers } from './workers/runtime.ts';

const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'worker');
await prepareDatabase(config.DATABASE_URL, logger);
const db = createDb(config.DATABASE_URL);
const workers = await startWorkers(config, { db, logger });
handleProcessSignals(logger, async () => {
  await workers.stop();
  await db.$disconnect();
});
logger.info('worker running');
