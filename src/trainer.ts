// The trainer process: trains model versions from the event log (on schedule, on `retrainModel`, after the
// demo load) and announces them; serves nothing but its /metrics. Run one or more; they train one at a time.
import { setPriority } from 'node:os';
import { createDb } from './db/client.ts';
import { prepareDatabase } from './db/prepare.ts';
import { startMetricsServer } from './http/metrics-server.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { handleProcessSignals, loadConfigOrExit } from './process.ts';
import { startTrainer } from './workers/trainer.ts';

const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'trainer');
// Before any thread starts: the ALS threads and libuv's pool inherit it from this one.
if (config.TRAINER_NICE > 0) setPriority(config.TRAINER_NICE);
await prepareDatabase(config.DATABASE_URL, logger);
const metrics = createMetrics(['trainer']);
// No statement timeout: the trainer's reads of the log are long by nature and answer no request.
const db = createDb(config.DATABASE_URL, {
  poolSize: 4,
  connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
  onError: (error) => {
    metrics.dependencyErrors.inc({ dependency: 'postgres' });
    logger.warn({ err: error.message }, 'postgres connection error');
  },
});
const trainer = await startTrainer(config, { db, logger, metrics });
const metricsServer =
  config.TRAINER_METRICS_PORT > 0
    ? await startMetricsServer({ registry: metrics.registry, port: config.TRAINER_METRICS_PORT, logger })
    : undefined;
handleProcessSignals(logger, async () => {
  await metricsServer?.close();
  await trainer.stop();
  await db.$disconnect();
});
logger.info('trainer running');
