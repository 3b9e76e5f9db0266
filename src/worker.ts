// The feature worker process: applies events, replays the log when Redis lost it, sweeps the outbox. Scale it
// out separately from the gateway; it never trains (that is src/trainer.ts).
import { createDb } from './db/client.ts';
import { prepareDatabase } from './db/prepare.ts';
import { startMetricsServer } from './http/metrics-server.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { handleProcessSignals, loadConfigOrExit } from './process.ts';
import { startWorkers } from './workers/runtime.ts';

const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'worker');
await prepareDatabase(config.DATABASE_URL, logger);
const metrics = createMetrics(['worker']);
const db = createDb(config.DATABASE_URL, {
  poolSize: 20,
  connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
  statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
  onError: (error) => {
    metrics.dependencyErrors.inc({ dependency: 'postgres' });
    logger.warn({ err: error.message }, 'postgres connection error');
  },
});
const workers = await startWorkers(config, { db, logger, metrics });
const metricsServer =
  config.WORKER_METRICS_PORT > 0
    ? await startMetricsServer({ registry: metrics.registry, port: config.WORKER_METRICS_PORT, logger })
    : undefined;
handleProcessSignals(logger, async () => {
  await metricsServer?.close();
  await workers.stop();
  await db.$disconnect();
});
logger.info('worker running');
