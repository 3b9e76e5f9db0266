// The trainer process: trains model versions from the event log (on schedule, on `retrainModel`, after the
// demo load) and announces them; serves nothing but its /metrics. Run one or more; they train one at a time.
import { runBackgroundRole } from './background-role.ts';
import { startTrainer } from './workers/trainer.ts';

await runBackgroundRole({
  name: 'trainer',
  metricsPort: (config) => config.TRAINER_METRICS_PORT,
  poolSize: 4,
  // The trainer's reads of the log are long by nature and answer no request.
  statementTimeout: false,
  // On a machine shared with gateways and workers, training takes only the CPU they leave idle.
  nice: (config) => config.TRAINER_NICE,
  start: startTrainer,
});
