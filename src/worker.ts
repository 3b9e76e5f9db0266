// The feature worker process: applies events, replays the log when Redis lost it, sweeps the outbox. Scale it
// out separately from the gateway; it never trains (that is src/trainer.ts).
import { runBackgroundRole } from './background-role.ts';
import { startWorkers } from './workers/runtime.ts';

await runBackgroundRole({
  name: 'worker',
  metricsPort: (config) => config.WORKER_METRICS_PORT,
  poolSize: 20,
  statementTimeout: true,
  start: startWorkers,
});
