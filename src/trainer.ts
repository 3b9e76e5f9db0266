// The trainer process: trains model versions from the event log (on schedule, on `retrainModel`, after the
// demo load) and announces them; serves nothing. Run one or more; they train one at a time.
import { createDb } from './db/client.ts';
import { prepareDatabase } from './db/prepare.ts';
import { createLogger } from './logger.ts';
import { handleProcessSignals, loadConfigOrExit } from './process.ts';
import { startTrainer } from './workers/trainer.ts';

const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'trainer');
await prepareDatabase(config.DATABASE_URL, logger);
const db = createDb(config.DATABASE_URL, 4);
const trainer = await startTrainer(config, { db, logger });
handleProcessSignals(logger, async () => {
  await trainer.stop();
  await db.$disconnect();
});
logger.info('trainer running');
