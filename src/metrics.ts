import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The processes that expose metrics; one process may play several roles (`npm start`). */
export type MetricsRole = 'gateway' | 'worker' | 'trainer';

/** The part of a BullMQ queue the depth gauges read. */
export interface WatchedQueue {
  readonly name: string;
  getWaitingCount(): Promise<number>;
  /** `getWaiting(0, 0)` is the oldest waiting job. */
  getWaiting(start: number, end: number): Promise<({ timestamp: number; delay: number } | undefined)[]>;
}

/**
 * Every metric of the product, as one typed object handed to the services and processors that observe
 * them. Metrics outside the process's roles still exist (observing them costs nothing) but are not
 * registered, so `/metrics` shows only what the process does.
 */
export interface Metrics {
  readonly registry: Registry;
  /** `pgw_request_duration_seconds{kind,operation}`. */
  readonly requestDuration: Histogram<'kind' | 'operation'>;
  /** `pgw_events_total{outcome,rule}`: one per event, batches count each entry. */
  readonly events: Counter<'outcome' | 'rule'>;
  /** `pgw_event_push_latency_seconds`: push time − the causing event's `receivedAt`. */
  readonly pushLatency: Histogram;
  readonly subscriptionsOpen: Gauge;
  readonly pushes: Counter<'trigger'>;
  /**
   * Sets `pgw_model_version_serving` and `pgw_model_holdout_ndcg10`; each is left out of the scrape while
   * there is no value (no model, or a version without the metric), rather than reading 0.
   */
  setServingModel(versionId: number, ndcg10: number | undefined): void;
  readonly trainingDuration: Histogram;
  readonly trainings: Counter<'outcome'>;
  readonly dependencyErrors: Counter<'dependency'>;
  /**
   * `pgw_experiment_attributions_total{outcome}`: events carrying a recommendationId that is an experiment's
   * (`attributed`), looks like one but fails its signature (`forged`), or is neither ours nor a plain list id
   * (`malformed`). Forged and malformed ones are stored, not attributed. Counted by the feature worker as it
   * applies the events (again if it applies one again after a crash).
   */
  readonly experimentAttributions: Counter<'outcome'>;
  /** `pgw_experiment_impressions_total{outcome}`: served experiment lists `logged`, or `dropped` (buffer full). */
  readonly experimentImpressions: Counter<'outcome'>;
  /**
   * Reports these queues' waiting jobs at scrape time. One queue per name: watching a name again (the
   * gateway and in-process workers both hold an `events` queue) replaces the earlier one. Returns an unwatch.
   */
  watchQueues(queues: readonly WatchedQueue[]): () => void;
  /**
   * Reports the gateway's fan-out at scrape time: `pgw_fanout_waiting_lists` (lists waiting to be recomputed
   * after a catalogue or model change) and `pgw_fanout_rate` (recomputations per second the model, rebuild
   * and experiment pacer allows now).
   */
  watchFanout(read: () => { waiting: number; rate: number }): void;
}

/** How long a scrape waits for Redis before leaving the queue gauges out. */
const QUEUE_SCRAPE_TIMEOUT_MS = 500;

/** Fine at the low end: a push normally follows its event within milliseconds. */
const PUSH_LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const TRAINING_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600];

/** A registry with the metrics of these roles and Node's default metrics, all prefixed `pgw_`. */
export function createMetrics(roles: readonly MetricsRole[]): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ prefix: 'pgw_', register: registry });
  const registers = (...of: MetricsRole[]) => (of.some((role) => roles.includes(role)) ? [registry] : []);

  const queues = new Map<string, WatchedQueue>();
  const waiting: Gauge<'queue'> = new Gauge({
    name: 'pgw_queue_waiting_jobs',
    help: 'Jobs waiting in a BullMQ queue, read at scrape time.',
    labelNames: ['queue'],
    registers: registers('gateway', 'worker', 'trainer'),
    collect: () => refresh(),
  });
  const oldest: Gauge<'queue'> = new Gauge({
    name: 'pgw_queue_oldest_waiting_seconds',
    help: 'How long the oldest waiting job of a BullMQ queue has waited, read at scrape time.',
    labelNames: ['queue'],
    registers: registers('gateway', 'worker', 'trainer'),
    collect: () => refresh(),
  });
  // Both gauges' collect run in the same scrape: read Redis once for the two.
  let reading: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    reading ??= Promise.all([...queues.values()].map((queue) => readQueue(queue, waiting, oldest))).then(() => {
      reading = undefined;
    });
    return reading;
  };

  let fanout: (() => { waiting: number; rate: number }) | undefined;
  const fanoutWaiting = new Gauge({
    name: 'pgw_fanout_waiting_lists',
    help: 'Open lists waiting to be recomputed after a catalogue, model or placement change.',
    registers: registers('gateway'),
    collect() {
      if (fanout) this.set(fanout().waiting);
    },
  });
  const fanoutRate = new Gauge({
    name: 'pgw_fanout_rate',
    help: 'Recomputations per second the pacer of model, rebuild and experiment fan-outs allows now (it slows while the event loop is busy; 0: no limit).',
    registers: registers('gateway'),
    collect() {
      if (fanout) this.set(fanout().rate);
    },
  });

  const showsModel = roles.includes('gateway');
  const serving = optionalGauge(registry, showsModel, {
    name: 'pgw_model_version_serving',
    help: 'The model version this gateway serves; absent without a model.',
  });
  const ndcg = optionalGauge(registry, showsModel, {
    name: 'pgw_model_holdout_ndcg10',
    help: "NDCG@10 on the temporal hold-out of the version this gateway serves (its metrics['ndcg@10']).",
  });

  return {
    registry,
    requestDuration: new Histogram({
      name: 'pgw_request_duration_seconds',
      help: 'HTTP requests by kind (graphql, rest) and operation (GraphQL type and root fields, or REST route).',
      labelNames: ['kind', 'operation'],
      buckets: REQUEST_BUCKETS,
      registers: registers('gateway'),
    }),
    events: new Counter({
      name: 'pgw_events_total',
      help: 'Tracked events by outcome (accepted, duplicate, conflict, rejected) and, for rejected, the rule broken.',
      labelNames: ['outcome', 'rule'],
      registers: registers('gateway'),
    }),
    pushLatency: new Histogram({
      name: 'pgw_event_push_latency_seconds',
      help: 'From an event reaching the gateway to the subscription push it caused.',
      buckets: PUSH_LATENCY_BUCKETS,
      registers: registers('gateway'),
    }),
    subscriptionsOpen: new Gauge({
      name: 'pgw_subscriptions_open',
      help: 'Open recommendation subscriptions on this gateway (WebSocket and SSE).',
      registers: registers('gateway'),
    }),
    pushes: new Counter({
      name: 'pgw_pushes_total',
      help: 'Subscription pushes by trigger (SUBSCRIBED, EVENT, CATALOG, MODEL, PLACEMENT).',
      labelNames: ['trigger'],
      registers: registers('gateway'),
    }),
    trainingDuration: new Histogram({
      name: 'pgw_training_duration_seconds',
      help: 'Duration of training jobs (read, hold-out evaluation, fit, index build, store), failed ones too.',
      buckets: TRAINING_BUCKETS,
      registers: registers('trainer'),
    }),
    trainings: new Counter({
      name: 'pgw_trainings_total',
      help: 'Training jobs by outcome (succeeded, failed).',
      labelNames: ['outcome'],
      registers: registers('trainer'),
    }),
    dependencyErrors: new Counter({
      name: 'pgw_dependency_errors_total',
      help: 'Errors of Redis and Postgres: connection errors and requests answered UNAVAILABLE.',
      labelNames: ['dependency'],
      registers: registers('gateway', 'worker', 'trainer'),
    }),
    experimentAttributions: new Counter({
      name: 'pgw_experiment_attributions_total',
      help: 'Events with a recommendationId: attributed to an experiment variant, forged (bad signature) or malformed.',
      labelNames: ['outcome'],
      registers: registers('worker'),
    }),
    experimentImpressions: new Counter({
      name: 'pgw_experiment_impressions_total',
      help: 'Served experiment lists written to the impression log (logged) or dropped because its buffer was full.',
      labelNames: ['outcome'],
      registers: registers('gateway'),
    }),
    setServingModel(versionId, ndcg10) {
      serving(versionId);
      ndcg(ndcg10);
    },
    watchFanout(read) {
      fanout = read;
      fanoutWaiting.set(0);
      fanoutRate.set(0);
    },
    watchQueues(watched) {
      for (const queue of watched) queues.set(queue.name, queue);
      return () => {
        for (const queue of watched) {
          if (queues.get(queue.name) !== queue) continue;
          queues.delete(queue.name);
          waiting.remove({ queue: queue.name });
          oldest.remove({ queue: queue.name });
        }
      };
    },
  };
}

/**
 * An unlabelled gauge that is left out of the scrape while it has no value: prom-client's own would read 0
 * from the start, so it is registered only once set, and removed again when unset. Returns its setter.
 */
function optionalGauge(
  registry: Registry,
  enabled: boolean,
  config: { name: string; help: string },
): (value: number | undefined) => void {
  const gauge = new Gauge({ ...config, registers: [] });
  return (value) => {
    if (!enabled) return;
    const shown = registry.getSingleMetric(config.name) !== undefined;
    if (value === undefined) {
      if (shown) registry.removeSingleMetric(config.name);
      return;
    }
    gauge.set(value);
    if (!shown) registry.registerMetric(gauge);
  };
}

/** Sets the queue's gauges, or removes them when Redis does not answer in time (a scrape never hangs). */
async function readQueue(queue: WatchedQueue, waiting: Gauge<'queue'>, oldest: Gauge<'queue'>): Promise<void> {
  const labels = { queue: queue.name };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), QUEUE_SCRAPE_TIMEOUT_MS);
  });
  // A failed read counts as no answer, and settles quietly when it comes after the timeout.
  const read = Promise.all([queue.getWaitingCount(), queue.getWaiting(0, 0)]).catch(() => undefined);
  try {
    const result = await Promise.race([read, timeout]);
    if (!result) {
      waiting.remove(labels);
      oldest.remove(labels);
      return;
    }
    const [count, [job]] = result;
    waiting.set(labels, count);
    // A delayed job (the training schedule) starts waiting when it becomes due, not when it was added.
    oldest.set(labels, job ? Math.max(0, (Date.now() - job.timestamp - job.delay) / 1000) : 0);
  } finally {
    clearTimeout(timer);
  }
}
