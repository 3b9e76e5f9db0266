import { z } from 'zod';
import { DEFAULT_HNSW_PARAMS } from './ann/index.ts';

const EventWeights = z.strictObject({
  VIEW: z.number().min(0),
  CLICK: z.number().min(0),
  ADD_TO_CART: z.number().min(0),
  REMOVE_FROM_CART: z.number().min(0),
  PURCHASE: z.number().min(0),
});

const jsonFromEnv = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((text, context) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        context.addIssue({ code: 'custom', message: 'must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const booleanFromEnv = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

/**
 * Every setting of the gateway and its workers, read from the environment once at start-up.
 * README's configuration table and `.env.example` list the same keys.
 */
const Env = z
  .object({
    /** HTTP and WebSocket port of the gateway. */
    PORT: z.coerce.number().int().min(0).max(65535).default(4000),
    /** Postgres holding the catalogue, shoppers and the event log; created on start if missing. */
    DATABASE_URL: z
      .url({ protocol: /^postgres(ql)?$/ })
      .default('postgresql://postgres@127.0.0.1:5432/personalization'),
    /** Redis for queues, online features and pub/sub between gateway replicas. */
    REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
    /** Namespace of every Redis key, queue and channel, so several deployments (or test runs) share one Redis. */
    REDIS_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, dot, dash and underscore only')
      .default('pgw'),
    /** Load the bundled Online Retail II slice when the catalogue is empty. */
    DEMO_DATA: booleanFromEnv.default(true),
    /** Half-life of an interaction's weight in the trending (time-decayed popularity) ranking. */
    POPULARITY_HALF_LIFE_HOURS: z.coerce.number().positive().default(168),
    /**
     * How much one event of each type counts, for trending, category affinity and model training, as JSON.
     * REMOVE_FROM_CART 0 means it is stored but shapes nothing.
     */
    EVENT_WEIGHTS: jsonFromEnv(EventWeights).default({
      VIEW: 1,
      CLICK: 2,
      ADD_TO_CART: 4,
      REMOVE_FROM_CART: 0,
      PURCHASE: 8,
    }),
    /**
     * A shopper's online features (recent items, weights, categories, bought items, applied event ids) and
     * folded-in vectors expire after this many days without an event of theirs; their next event rebuilds them
     * from their history in Postgres. Fractions are allowed.
     */
    SHOPPER_TTL_DAYS: z.coerce.number().positive().default(30),
    /**
     * Most placeholder items (rows for item ids events name before the catalogue declares them) kept at once.
     * Beyond it an event naming another unknown item is stored but shapes no feature (no trending, co-visitation
     * or history), so made-up ids cannot grow the catalogue table or Redis; 0 = no placeholders.
     */
    MAX_PLACEHOLDER_ITEMS: z.coerce.number().int().min(0).default(10_000),
    /**
     * A placeholder not declared by `upsertItems` within this many hours of its creation is deleted (and dropped
     * from trending), which makes room under MAX_PLACEHOLDER_ITEMS. Fractions are allowed.
     */
    PLACEHOLDER_WINDOW_HOURS: z.coerce.number().positive().default(168),
    /** Largest batch `trackEvents` and `upsertItems` accept. */
    MAX_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(1000),
    /**
     * Earliest `occurredAt` an event may claim (ISO-8601); older ones are refused with rule `range`, so a
     * default-initialised date (0001-01-01) or a wrong epoch never lands in the log and the time-decayed models.
     */
    MIN_OCCURRED_AT: z.iso.datetime({ offset: true }).default('2000-01-01T00:00:00Z'),
    /** Connections of the gateway's ingest pool (the event insert on the acknowledgement path). */
    PG_INGEST_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(8),
    /**
     * Longest wait for a Postgres connection, new or (all busy) from the pool; then the request answers
     * `UNAVAILABLE` instead of hanging. Applies to every pool of the gateway and the worker.
     */
    PG_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).default(5000),
    /**
     * Longest a statement of the gateway or the worker may run (Postgres `statement_timeout`; the driver gives up
     * a second later if the server does not answer at all); 0 = no limit. The trainer's reads are not bounded.
     */
    PG_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
    /**
     * Events that may wait for an ingest statement while the pool is busy; beyond that `trackEvent(s)` answers
     * `UNAVAILABLE` at once, so a stalled Postgres sheds load fast instead of queueing it.
     */
    PG_MAX_WAITING_EVENTS: z.coerce.number().int().min(1).default(20_000),
    /** Open subscriptions one WebSocket connection may hold. */
    MAX_SUBSCRIPTIONS_PER_CONNECTION: z.coerce.number().int().min(1).default(20),
    /** Open subscriptions one gateway process serves, over WebSocket and SSE (an SSE request holds one) together. */
    MAX_SUBSCRIPTIONS: z.coerce.number().int().min(1).default(50_000),
    /**
     * Watched lists one gateway recomputes at once after a catalogue or placement change, and as many again
     * after a model activation, rebuild or experiment (two pacers); the rest wait their turn, so a fan-out
     * over every open subscription does not crowd out requests. Recomputations for a shopper's own event do
     * not wait.
     */
    FANOUT_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(8),
    /**
     * Lists one gateway starts recomputing per second on a catalogue change or a model activation (0 = no
     * limit). It caps the CPU share a fan-out takes from the freshness path (a recomputation costs about a
     * millisecond of CPU): at 250/s a model activation refreshes 10,000 open lists in 40 s, with shopper events
     * served first meanwhile. A shopper's own event is never paced.
     */
    FANOUT_RATE: z.coerce.number().min(0).max(1_000_000).default(250),
    /**
     * The rate a fan-out that reaches every list (a model activation, the end of a features rebuild, an
     * experiment) falls back to while the gateway's event loop is busier than `FANOUT_BUSY_TARGET`, and starts
     * from after an idle spell (catalogue and placement changes, which reach only the lists they alter, keep
     * `FANOUT_RATE`): low enough that a fan-out takes a few percent of a core (a
     * recomputation costs about a millisecond), high enough that it still ends (10,000 lists in under 7 minutes).
     */
    FANOUT_MIN_RATE: z.coerce.number().positive().max(1_000_000).default(25),
    /**
     * Event-loop utilization (0–1) above which a model, rebuild or experiment fan-out slows: the pacer halves
     * its rate whenever the loop was busier than this over a quarter second, and raises it towards
     * `FANOUT_RATE` while it is not. At half busy the loop still has room for bursts of shopper events; 1 turns
     * the adaptation off (a fixed `FANOUT_RATE`).
     */
    FANOUT_BUSY_TARGET: z.coerce.number().positive().max(1).default(0.5),
    /**
     * OS scheduling priority (nice, 0–19) the trainer process takes at start, for itself and the threads it
     * starts: on a machine it shares with gateways and workers, training then uses only the CPU they leave
     * idle, so a retrain does not slow pushes. 0 keeps the normal priority (a machine of its own).
     */
    TRAINER_NICE: z.coerce.number().int().min(0).max(19).default(19),
    /**
     * Unsent bytes one WebSocket connection may hold in the gateway's memory before it is dropped as a client
     * that stopped reading; keep it well above the largest push (a push that cannot go out at once counts whole).
     */
    WS_MAX_BUFFERED_BYTES: z.coerce.number().int().positive().default(1_048_576),
    /**
     * How a gateway hands stored events to the feature workers: `stream`, a Redis Stream the workers read in
     * batches (the lean freshness path), or `queue`, a BullMQ job per stored batch. Either way the outbox sweep
     * re-queues on BullMQ whatever was missed, and batches of over 100 events always go to BullMQ.
     */
    EVENT_HANDOFF: z.enum(['stream', 'queue']).default('stream'),
    /**
     * Back-pressure: past this many stored events that no worker has processed, trackEvent(s) answer
     * OVERLOADED at once (nothing acknowledged) until the workers catch up; 0 turns it off.
     */
    MAX_EVENT_BACKLOG: z.coerce.number().int().min(0).default(20_000),
    /** Parallel jobs per feature-worker process. */
    WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
    /** How long a worker holds a job before another may take it over; bounds redelivery after a crash. */
    WORKER_LOCK_MS: z.coerce.number().int().min(1000).default(5000),
    /** How often the outbox sweep re-queues stored events that no worker has processed yet. */
    OUTBOX_SWEEP_INTERVAL_MS: z.coerce.number().int().min(50).default(2000),
    /** How old an unprocessed event must be before the sweep re-queues it (normal delivery is faster). */
    OUTBOX_GRACE_MS: z.coerce.number().int().min(0).default(5000),
    /** Retrain the model from the event log this often (minutes); 0 turns the schedule off (`retrainModel` still works). */
    TRAIN_INTERVAL_MINUTES: z.coerce.number().min(0).default(60),
    /**
     * Pins parameters instead of tuning them: a JSON file `{ "als": { "params": {…} }, "ease": …, "itemknn": … }`
     * (as `npm run tune` writes it). A family listed there is fitted with exactly those params, the others are
     * still tuned. Empty (the default): every family is tuned on the shop's own data.
     */
    TRAIN_PARAMS_FILE: z.string().default(''),
    /**
     * Which family serves: `auto` tunes ALS, EASE and item-kNN and a blend of them on a validation split of the
     * shop's data and serves the best by NDCG@10; a family name trains only that family.
     */
    TRAIN_MODEL: z
      .enum(['auto', 'als', 'ease', 'itemknn'], { error: 'must be auto, als, ease or itemknn' })
      .default('auto'),
    /** How training searches each family's parameters: `grid`, `random` (both with successive halving) or `bayes` (TPE). */
    TUNE_SEARCH: z.enum(['grid', 'random', 'bayes'], { error: 'must be grid, random or bayes' }).default('bayes'),
    /**
     * Seconds of model selection per training: the validation split, each family's search and served validation,
     * and the blend (a trial started before the deadline may finish past it). 0: no search, each family fits
     * the previous version's best params or the library defaults.
     */
    TUNE_BUDGET_SECONDS: z.coerce.number().min(0).max(86_400).default(60),
    /** Neighbours per item kept in an item-to-item version's neighbour table (what EASE, item-kNN and blends serve from). */
    MODEL_NEIGHBOURS: z.coerce.number().int().min(1).max(2000).default(200),
    /**
     * Most items EASE fits (a dense solve: n³/2 multiply-adds, 8n² bytes); above it EASE keeps the items with the
     * most shoppers and the rest score nothing from EASE.
     */
    EASE_MAX_ITEMS: z.coerce.number().int().min(10).max(30_000).default(5000),
    /** In training, an interaction's weight halves every this many days before the newest event; 0 = no decay. */
    TRAIN_HALF_LIFE_DAYS: z.coerce.number().min(0).optional(),
    /**
     * After a rollback pins a version, a newly trained version replaces it only when its hold-out NDCG@10 is
     * better by this fraction (0.05 = 5 %); `unpinModel` ends the pin at once. Hold-outs of two trainings are
     * cut from different data, so a small margin absorbs that noise.
     */
    MODEL_PIN_MARGIN: z.coerce.number().min(0).max(10).default(0.05),
    /** Threads the training worker uses for the ALS and EASE solves. */
    TRAIN_THREADS: z.coerce.number().int().min(1).max(64).default(2),
    /**
     * When set, admin operations (retrainModel, rollbackModel) require `Authorization: Bearer <token>`;
     * when empty they are open, which suits development only.
     */
    ADMIN_TOKEN: z.string().default(''),
    /**
     * Interface the gateway listens on. With no API key in the database (and no BOOTSTRAP_ADMIN_KEY) it refuses
     * any but a loopback address, since it would then serve everything to anyone: create a key first.
     */
    HOST: z.string().min(1).default('127.0.0.1'),
    /**
     * A secret stored (hashed) as the first admin key when no active key exists, e.g. for docker-compose; at
     * least 32 characters. Rotate it by creating a new admin key, revoking this one, and removing the variable.
     */
    BOOTSTRAP_ADMIN_KEY: z.union([z.literal(''), z.string().min(32)]).default(''),
    /**
     * Origins a browser page may call the gateway from (comma-separated, e.g. `https://shop.example`); listed
     * origins get CORS headers with credentials, `*` lets any origin in without credentials, empty allows
     * same-origin pages only. WebSocket upgrades from other origins are refused; clients that send no
     * `Origin` (servers, scripts) are not browsers and are let through.
     */
    CORS_ORIGINS: z
      .string()
      .default('')
      .transform((list) =>
        list
          .split(',')
          .map((origin) => origin.trim().replace(/\/$/, ''))
          .filter(Boolean),
      ),
    /**
     * Requests (GraphQL over HTTP, `/api/*`, WebSocket connections and subscribe messages) one client may
     * make per second, counted in Redis so every gateway shares the budget; 0 turns rate limiting off. A
     * client is its address (its API key once keys exist). Generous by default: a storefront behind one NAT
     * or proxy address shares one budget, and loopback is deliberately not exempt (a reverse proxy on the
     * same host would make every client loopback); benchmarks that load one gateway from one address set 0.
     */
    RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(0).default(200),
    /** Requests a client may make beyond `RATE_LIMIT_PER_SECOND` within any 10 s, for bursts (a page load). */
    RATE_LIMIT_BURST: z.coerce.number().int().min(0).default(2000),
    /**
     * Largest request body in bytes (HTTP 413 `PAYLOAD_TOO_LARGE` beyond it); also the largest WebSocket
     * message. A `trackEvents` batch of 1000 events with every field set and a 90-byte context measures 262 KB,
     * so 1 MiB leaves room; clients that send contexts near their 8 KiB cap need smaller batches or more here.
     */
    MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
    /** Aliased fields one operation may hold (graphql-armor); a real query of this schema needs a handful. */
    MAX_ALIASES: z.coerce.number().int().min(1).default(20),
    /** Lexical tokens one document may hold (graphql-armor); GraphiQL's introspection query has about 350. */
    MAX_TOKENS: z.coerce.number().int().min(100).default(2000),
    /** Directives one operation may hold (graphql-armor). */
    MAX_DIRECTIVES: z.coerce.number().int().min(1).default(50),
    /**
     * Estimated cost one operation may have (graphql-armor's cost limit: 1 a scalar, 2 an object, nested
     * selections weighted 1.5× per level, lists multiplied by their `first`); introspection is exempt.
     */
    MAX_COST: z.coerce.number().int().min(1).default(5000),
    /** Serve GraphiQL on `GET /graphql` from a browser. */
    GRAPHIQL: booleanFromEnv.default(true),
    /** Answer introspection queries (`__schema`, `__type`); GraphiQL needs them. */
    INTROSPECTION: booleanFromEnv.default(true),
    /**
     * Personalisation for shoppers who never said (setConsent, EventInput.consent): `granted` personalises them
     * (the shop collects consent itself, or its law does not ask for it; the demo and README examples rely on
     * it), `required` gives them non-personal lists, building nothing of theirs, until they grant it. Either way
     * their events count toward trending.
     */
    CONSENT_DEFAULT: z.enum(['granted', 'required'], { error: 'must be granted or required' }).default('granted'),
    /**
     * A secret (at least 32 characters) that pseudonymises shopper ids: every id a caller sends is replaced at
     * the edge by its HMAC-SHA256 under this key (`p_…`) before it reaches Postgres, Redis, queues, models or
     * logs, and answers give back the caller's id. It also keys the erasure log's HMAC. Keep it out of the
     * database's reach; changing it makes every stored shopper a stranger. Setting it on a database that holds
     * the shop's ids needs `npm run -s ids:pseudonymise` first. Empty: ids are stored as sent.
     */
    USER_ID_KEY: z
      .union([z.literal(''), z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)')])
      .default(''),
    /**
     * A secret (at least 32 characters) that signs experiment lists' recommendationIds (HMAC-SHA256), so an event
     * that carries one is attributed to its variant and a made-up or altered id is not. Empty: a key derived
     * from USER_ID_KEY when that is set, else a fixed development key (the gateway warns at start): anyone who
     * reads the source could then forge attributions. Every gateway must share it; changing it leaves events
     * carrying older ids unattributed.
     */
    RECOMMENDATION_ID_KEY: z
      .union([z.literal(''), z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)')])
      .default(''),
    /** HNSW graph degree of new model versions' item index (bench/ann.ts chose the default). */
    HNSW_M: z.coerce.number().int().min(4).max(128).default(DEFAULT_HNSW_PARAMS.M),
    /** HNSW build-time candidate list size. */
    HNSW_EF_CONSTRUCTION: z.coerce.number().int().min(8).max(2000).default(DEFAULT_HNSW_PARAMS.efConstruction),
    /** HNSW query-time candidate list size (recall against speed); stored with each version's index. */
    HNSW_EF: z.coerce.number().int().min(8).max(2000).default(DEFAULT_HNSW_PARAMS.ef),
    /** Port of the feature-worker process's `/metrics` (and `/health`) endpoint; 0 turns it off. */
    WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(4001),
    /** Port of the trainer process's `/metrics` (and `/health`) endpoint; 0 turns it off. */
    TRAINER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(4002),
    /** Log level of the process (pino levels). */
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .refine((env) => env.FANOUT_RATE === 0 || env.FANOUT_MIN_RATE <= env.FANOUT_RATE, {
    path: ['FANOUT_MIN_RATE'],
    message: 'must not exceed FANOUT_RATE (FANOUT_RATE=0 turns pacing off altogether)',
  });

export type Config = Readonly<z.infer<typeof Env>>;

/** Reads and validates the configuration; throws one readable list of every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = Env.safeParse(env);
  if (!parsed.success) throw new Error(`Invalid configuration:\n${z.prettifyError(parsed.error)}`);
  return Object.freeze(parsed.data);
}
