import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { QueueEvents } from 'bullmq';
import { type DocumentNode, GraphQLError, getOperationAST, getVariableValues, Kind } from 'graphql';
import type { OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, handleStreamOrSingleExecutionResult, maskError, type Plugin } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Config } from './config.ts';
import { createDb, createIngestPool, type Db } from './db/client.ts';
import { DomainError, ErrorCode, InvalidInputError, UnavailableError } from './errors.ts';
import { makeAdminCheck } from './http/admin-token.ts';
import { makeOfflineGraphiQL } from './http/graphiql.ts';
import { graphqlLimits } from './http/graphql-limits.ts';
import { makeGuards } from './http/guards.ts';
import { useDocumentNestingLimit, useUtf8Guard } from './http/input-guards.ts';
import { useRequestMetrics } from './http/request-metrics.ts';
import { makeRestRoutes } from './http/rest-routes.ts';
import { makeSlowConsumerGuard } from './http/slow-consumers.ts';
import { loadStaticFiles } from './http/static-files.ts';
import { SubscriptionLimits, useSseSubscriptionLimits } from './http/subscription-limits.ts';
import { type Logger, loggableMessage } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { PubSub } from './realtime/pubsub.ts';
import { connectRedis, createRedis } from './redis.ts';
import type { Context, Services } from './schema/context.ts';
import { schema } from './schema/index.ts';
import { type Caller, type Credentials, resolveCaller } from './services/access.ts';
import { KeyStore } from './services/api-keys.ts';
import { CatalogService } from './services/catalog.ts';
import { ConsentService } from './services/consent.ts';
import { ErasureService } from './services/erasure.ts';
import { EventService } from './services/events.ts';
import { RecommendationIds, recommendationIdKey } from './services/experiment-ids.ts';
import { ExperimentService } from './services/experiments.ts';
import { FeatureStore } from './services/features.ts';
import { IngestBacklog } from './services/ingest-backlog.ts';
import { ModelService } from './services/models.ts';
import { NewItemVectors } from './services/new-item-vectors.ts';
import { eventLoopGauge } from './services/pacer.ts';
import { PlacementService } from './services/placements.ts';
import { RebuildFallback } from './services/rebuild-fallback.ts';
import { RecommendationService } from './services/recommendations.ts';
import { ReplayStatus } from './services/replay-status.ts';
import { ShopperIds } from './services/shopper-ids.ts';
import { ShopperVectors } from './services/shopper-vectors.ts';
import { ShopperService } from './services/shoppers.ts';
import { TrainingService } from './services/training-jobs.ts';
import { WarmUp } from './services/warm-up.ts';
import { LiveEventsWriter, purgeLiveEvents } from './workers/live-events.ts';
import { createEventsQueue, createReplayQueue, createTrainQueue, TRAIN_QUEUE } from './workers/queues.ts';
import { startWorkers, type Workers } from './workers/runtime.ts';

const GRAPHQL_ENDPOINT = '/graphql';

export interface App {
  /** Listens on the port (0 picks a free one); resolves with the address. */
  start(port: number): Promise<{ port: number; url: string }>;
  /** Closes connections and subscriptions, then workers, Prisma and Redis. */
  stop(): Promise<void>;
  readonly services: Services;
  readonly db: Db;
  /** Demo load behind a listening gateway, and what `/ready` says is still warming. */
  readonly warmUp: WarmUp;
  /** This process's metrics (served at /metrics), the in-process workers' included. */
  readonly metrics: Metrics;
  /** Where lists read trending and bought items from while the online features are rebuilt. */
  readonly fallback: RebuildFallback;
}

export interface AppOptions {
  logger: Logger;
  /** Run the feature worker and the outbox sweep in this process too (development, demo, single box). */
  workers: boolean;
}

/**
 * Turns expected failures into GraphQL errors that carry their code and field; hides everything else.
 * Yoga passes every error through here, the client's own mistakes too (malformed JSON, a parse or validation
 * error, a bad variable): those are GraphQL errors from the start and are logged at info, as are domain
 * errors (UNAVAILABLE at warn: an operator's concern). Only an unexpected failure is logged at error.
 */
function maskDomainErrors(logger: Logger, metrics: Metrics) {
  return (error: unknown, message: string, isDev?: boolean): Error => {
    // Duck-typed: under some loaders graphql's ESM and CJS builds coexist and instanceof GraphQLError fails.
    const located = error instanceof Error && 'path' in error ? (error as GraphQLError) : undefined;
    const original = located?.originalError ?? error;
    if (original instanceof DomainError) {
      if (original instanceof UnavailableError) {
        metrics.dependencyErrors.inc({ dependency: original.dependency });
        logger.warn({ code: original.code, err: original.cause }, original.message);
      } else {
        // An input rule's message names its field, whose path can run into free context: logged up to there.
        const field = loggableField(original.field);
        const message = original instanceof InvalidInputError ? `${field}: breaks ${original.rule}` : original.message;
        logger.info({ code: original.code, field, rule: original.rule }, message);
      }
      const status = httpStatusOf(original.code);
      return new GraphQLError(original.message, {
        nodes: located?.nodes,
        path: located?.path,
        extensions: {
          code: original.code,
          field: original.field,
          rule: original.rule,
          // Yoga answers with this status; 401 and 403 tell an HTTP client to fix its key before looking further.
          ...(status && { http: { status } }),
        },
      });
    }
    if (located && isClientMistake(located)) {
      logger.info({ code: located.extensions?.code }, `client error: ${loggableMessage(located.message)}`);
      return located;
    }
    logger.error({ err: original ?? error }, 'unexpected error while executing a request');
    return maskError(error, message, isDev);
  };
}

/** A field path as it may be logged: the keys inside free context or attributes are the client's data. */
function loggableField(field: string | undefined): string | undefined {
  return field?.replace(/\.(context|attributes)\..*$/, '.$1');
}

/** The HTTP status an access error answers with. */
export function httpStatusOf(code: ErrorCode): 401 | 403 | undefined {
  if (code === ErrorCode.UNAUTHENTICATED) return 401;
  if (code === ErrorCode.FORBIDDEN) return 403;
  return undefined;
}

/** A GraphQL error all the way down (no exception thrown beneath it): the client's mistake. */
function isClientMistake(error: GraphQLError): boolean {
  const cause = error.originalError;
  return cause == null || (cause instanceof Error && 'path' in cause && isClientMistake(cause as GraphQLError));
}

/**
 * A bad variable value (wrong enum, missing field) is reported without a code, and the compiled executor's
 * message loses the list index; redo the coercion with graphql-js (error path only) for its precise
 * message ("at inputs[3].type"), and give each error a code to branch on.
 */
const explainBadVariables: Plugin = {
  onExecute: ({ args }) => ({
    onExecuteDone: (payload) =>
      handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
        if (!result.errors?.some(isBadVariable)) return;
        const operation = getOperationAST(args.document, args.operationName);
        const coerced = getVariableValues(args.schema, operation?.variableDefinitions ?? [], args.variableValues ?? {});
        const errors = (coerced.errors ?? result.errors).map(
          (error) =>
            new GraphQLError(error.message, {
              nodes: error.nodes,
              extensions: { ...error.extensions, code: ErrorCode.INVALID_INPUT },
            }),
        );
        setResult({ errors });
      }),
  }),
};

/** A document that fails validation is the client's mistake: logged at info (Yoga answers it without masking). */
function logInvalidOperations(logger: Logger): Plugin {
  return {
    onValidate:
      () =>
      ({ result }) => {
        if (result.length)
          logger.info({ errors: result.map((error) => error.message) }, 'client error: invalid operation');
      },
  };
}

function isBadVariable(error: GraphQLError): boolean {
  return !error.path && !error.extensions?.code && error.message.startsWith('Variable "$');
}

export async function buildApp(config: Config, options: AppOptions): Promise<App> {
  const { logger } = options;
  // In-process workers report into the gateway's registry, served at its /metrics. The trainer is a process
  // of its own (npm start runs it as a child) with its own /metrics port.
  const metrics = createMetrics(options.workers ? ['gateway', 'worker'] : ['gateway']);
  const onPostgresError = (error: Error) => {
    metrics.dependencyErrors.inc({ dependency: 'postgres' });
    logger.warn({ err: error.message }, 'postgres connection error');
  };
  const onRedisError = (error: Error) => {
    metrics.dependencyErrors.inc({ dependency: 'redis' });
    logger.warn({ err: error.message }, 'redis connection error');
  };
  const poolOptions = {
    onError: onPostgresError,
    connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
  };
  const db = createDb(config.DATABASE_URL, { ...poolOptions, poolSize: 20 });
  const ingestPool = createIngestPool(config.DATABASE_URL, { ...poolOptions, poolSize: config.PG_INGEST_POOL_SIZE });
  const command = createRedis(config.REDIS_URL, 'command');
  const reads = createRedis(config.REDIS_URL, 'reads');
  const queues = createRedis(config.REDIS_URL, 'queues');
  const subscriber = createRedis(config.REDIS_URL, 'subscriber');
  for (const redis of [command, reads, queues, subscriber]) redis.on('error', onRedisError);
  const pubsub = new PubSub({ publisher: command, subscriber, prefix: config.REDIS_PREFIX });
  const features = FeatureStore.fromConfig(reads, config);
  const fallback = new RebuildFallback({
    features,
    db,
    logger,
    halfLifeHours: config.POPULARITY_HALF_LIFE_HOURS,
    weights: config.EVENT_WEIGHTS,
  });
  const queue = createEventsQueue(queues, config.REDIS_PREFIX);
  queue.on('error', (error) => logger.warn({ err: error.message }, 'events queue error'));
  const catalog = new CatalogService({ db, pubsub, logger, maxBatch: config.MAX_BATCH_SIZE });
  const newItems = new NewItemVectors({ redis: reads, prefix: config.REDIS_PREFIX });
  const models = new ModelService({
    db,
    pubsub,
    logger,
    metrics,
    newItems,
    itemMeta: (itemId) => {
      const item = catalog.filterable(itemId);
      return item && { inStock: item.inStock, category: item.category ?? undefined, price: item.price ?? undefined };
    },
  });
  // The indexes' copy of stock, category and price follows the catalogue (here or on another replica).
  catalog.onChange(({ itemIds }) => models.refreshMeta(itemIds));
  const placements = new PlacementService({ db, pubsub, logger });
  const trainQueue = createTrainQueue(queues, config.REDIS_PREFIX);
  const replayQueue = createReplayQueue(queues, config.REDIS_PREFIX);
  const trainEventsConnection = createRedis(config.REDIS_URL, 'blocking');
  trainEventsConnection.on('error', onRedisError);
  const trainEvents = new QueueEvents(TRAIN_QUEUE, {
    connection: trainEventsConnection,
    prefix: `${config.REDIS_PREFIX}:q`,
    autorun: false,
  });
  const backlog = new IngestBacklog({ pool: ingestPool, maxEvents: config.MAX_EVENT_BACKLOG, logger });
  backlog.start();
  const ids = new ShopperIds(config.USER_ID_KEY);
  const erasure = new ErasureService({
    db,
    features,
    queue,
    purgeLive: (userId) => purgeLiveEvents(command, config.REDIS_PREFIX, userId),
    pubsub,
    ids,
    logger,
  });
  const consent = new ConsentService({ db, features, erasure });
  const signing = recommendationIdKey(config);
  if (signing.development) {
    logger.warn(
      'experiment recommendationIds are signed with the development key: set RECOMMENDATION_ID_KEY (or USER_ID_KEY) in production',
    );
  }
  const experiments = new ExperimentService({
    db,
    pool: ingestPool,
    pubsub,
    logger,
    metrics,
    models,
    placements,
    ids: new RecommendationIds(signing.key),
  });
  const services: Services = {
    catalog,
    models,
    training: new TrainingService({ db, queue: trainQueue, events: trainEvents, models }),
    events: new EventService({
      pool: ingestPool,
      backlog,
      queue,
      live: config.EVENT_HANDOFF === 'stream' ? new LiveEventsWriter(command, config.REDIS_PREFIX) : undefined,
      logger,
      metrics,
      maxBatch: config.MAX_BATCH_SIZE,
      maxWaiting: config.PG_MAX_WAITING_EVENTS,
      minOccurredAt: new Date(config.MIN_OCCURRED_AT),
      categoryOf: (itemId) => catalog.get(itemId)?.category ?? null,
      consent,
      ids,
    }),
    recommendations: new RecommendationService({
      features,
      fallback,
      catalog,
      models,
      vectors: new ShopperVectors({ db, redis: reads, features, newItems }),
      placements,
      pubsub,
      logger,
      fanout: {
        concurrency: config.FANOUT_CONCURRENCY,
        maxRate: config.FANOUT_RATE,
        load:
          config.FANOUT_BUSY_TARGET < 1
            ? { gauge: eventLoopGauge(), target: config.FANOUT_BUSY_TARGET, minRate: config.FANOUT_MIN_RATE }
            : undefined,
      },
      metrics,
      experiments,
    }),
    shoppers: new ShopperService({ features, catalog }),
    keys: new KeyStore({ db, pubsub, logger }),
    placements,
    experiments,
    erasure,
    consent,
    ids,
  };
  const warmUp = new WarmUp({
    db,
    pool: ingestPool,
    catalog,
    models,
    trainQueue,
    replayQueue,
    replayStatus: new ReplayStatus(command, config.REDIS_PREFIX),
    fallback,
    logger,
    internalId: (userId) => ids.internal('userId', userId),
  });
  let workers: Workers | undefined;
  try {
    await Promise.all([command, reads, queues, subscriber].map((redis) => connectRedis(redis, config.REDIS_URL)));
    await catalog.start();
    await placements.start();
    await models.start();
    // After the models and placements: experiments name them, and pinned versions load at start.
    await experiments.start();
    await services.keys.start(config.BOOTSTRAP_ADMIN_KEY);
    await fallback.start();
    // Its loop ends with an error when the connection closes under it (a stop, a Redis restart): not a crash.
    trainEvents.run().catch((error: unknown) => logger.debug({ err: error }, 'train queue events stopped'));
    if (options.workers) workers = await startWorkers(config, { db, logger, metrics });
  } catch (error) {
    // Leave nothing open behind a failed start, so the caller sees one clear error.
    backlog.stop();
    await Promise.allSettled([queue.close(), trainQueue.close(), replayQueue.close(), trainEvents.close()]);
    for (const redis of [command, reads, queues, subscriber, trainEventsConnection]) redis.disconnect();
    await Promise.allSettled([db.$disconnect(), ingestPool.end()]);
    throw error;
  }

  const isAdminToken = makeAdminCheck(config.ADMIN_TOKEN);
  const callerOf = (credentials: Credentials): Promise<Caller> =>
    resolveCaller(services.keys, isAdminToken, config.ADMIN_TOKEN === '', credentials);
  const guards = makeGuards(config, { redis: command, logger, graphqlEndpoint: GRAPHQL_ENDPOINT });

  // One count for every transport: WebSocket subscriptions take their slot below, SSE ones in the plugin.
  const limits = new SubscriptionLimits({
    maxPerConnection: config.MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxTotal: config.MAX_SUBSCRIPTIONS,
  });
  const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_ENDPOINT,
    context: async (initial) => {
      // Over HTTP the key comes in the Authorization header and the shopper token in x-shopper-token; over
      // WebSocket both in connection_init's payload (authorization, shopperToken).
      // (Over WebSocket there is no request: the upgrade's headers are not the client's credentials.)
      const { connectionParams } = initial as { connectionParams?: Record<string, unknown> };
      const headers = initial.request?.headers;
      const caller = await callerOf(
        headers
          ? { authorization: headers.get('authorization'), shopperToken: headers.get('x-shopper-token') }
          : { authorization: connectionParams?.authorization, shopperToken: connectionParams?.shopperToken },
      );
      return { db, services, caller };
    },
    maskedErrors: { maskError: maskDomainErrors(logger, metrics), isDev: false },
    plugins: [
      // First of ours, so its timing spans the others' work.
      useRequestMetrics(metrics),
      useUtf8Guard,
      useDocumentNestingLimit,

      // Compiled execution for queries and mutations: graphql-js spent a quarter of a trackEvents batch coercing variables.
      useGraphQlJit({}, { enableIf: (args) => !isSubscription(args.document) }),

      useSseSubscriptionLimits(limits),
      ...graphqlLimits(config),
      explainBadVariables,
      logInvalidOperations(logger),
    ],
    graphiql: config.GRAPHIQL ? { subscriptionsProtocol: 'WS' } : false,
    cors: guards.cors,
    renderGraphiQL: makeOfflineGraphiQL(),
    logging: false,
    // guards.admit caps the body (MAX_BODY_BYTES) before yoga sees the request; yoga's own cap would pipe every
    // body through a counting stream again (a stream pipeline per request: 1.6 of the 5.5 CPU seconds yoga
    // spent in a profiled freshness bench).
    maxRequestBodySize: false,
  });

  const rest = makeRestRoutes({
    db,
    redis: command,
    recommendations: services.recommendations,
    ids,
    callerOf,
    warmUp,
    logger,
    files: await loadStaticFiles(),
    metrics,
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!(await guards.admit(req, res, url))) return;
    if (url.pathname === yoga.graphqlEndpoint) return yoga.requestListener(req, res);
    return rest(req, res, url);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      logger.error({ err: error }, 'request failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
  });

  const wsServer = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    maxPayload: config.MAX_BODY_BYTES,
    verifyClient: guards.verifyUpgrade,
  });
  const dropIfNotReading = makeSlowConsumerGuard({ maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES, logger });
  const wsDisposable = useServer(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args),
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args),
      // A connection without a valid key (or with a forged or expired shopper token) is closed at once (4403).
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        return callerOf({ authorization: params.authorization, shopperToken: params.shopperToken }).then(
          () => true,
          (error: unknown) => {
            if (error instanceof DomainError) return false;
            throw error;
          },
        );
      },
      onSubscribe: async (ctx, id, params) => {
        const overBudget = await guards.refuseSubscribe(ctx.extra.request);
        if (overBudget) return overBudget;
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          // Its slot is taken below; the SSE limits plugin leaves it alone.
          transport: 'ws',
        });
        let contextValue: Awaited<ReturnType<typeof contextFactory>>;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          // The key may have been revoked since connection_init: answer as HTTP would, with the coded error.
          if (error instanceof DomainError)
            return [new GraphQLError(error.message, { extensions: { code: error.code } })];
          throw error;
        }
        const document = parseOrError(parse, params.query);
        if (document instanceof GraphQLError) return [document];
        const args = {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue,
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        const refused = limits.acquire(ctx, id);
        if (refused) return [new GraphQLError(refused, { extensions: { code: ErrorCode.TOO_MANY_SUBSCRIPTIONS } })];
        return args;
      },
      onNext: (ctx, id) => dropIfNotReading(ctx.extra.socket, id),
      onComplete: (ctx, id) => limits.release(ctx, id),
      onError: (ctx, id) => limits.release(ctx, id),
      // Also after a dropped slow client's terminate(): ws still emits 'close', so its slots come back.
      onClose: (ctx) => limits.releaseAll(ctx),
    },
    wsServer,
  );

  const unwatchQueues = metrics.watchQueues([queue, trainQueue]);

  return {
    services,
    db,
    warmUp,
    metrics,
    fallback,
    start: (port) =>
      new Promise((resolve, reject) => {
        if (!isLoopback(config.HOST) && !services.keys.enforcing) {
          reject(
            new Error(
              `refusing to listen on ${config.HOST} with no API key: anyone could reach everything. Create one (npm run -s keys -- create --scope admin), set BOOTSTRAP_ADMIN_KEY, or keep HOST=127.0.0.1.`,
            ),
          );
          return;
        }
        if (!services.keys.enforcing) {
          logger.warn(
            { host: config.HOST },
            'no API key configured: everything is open on this loopback address; create a key before exposing the gateway',
          );
        }
        server.once('error', reject);
        server.listen(port, config.HOST, () => {
          const address = server.address() as AddressInfo;
          resolve({ port: address.port, url: `http://127.0.0.1:${address.port}` });
        });
      }),
    async stop() {
      // A client that stopped reading never answers the close handshake; cut whoever is left after a second.
      const cutStragglers = setTimeout(() => {
        for (const socket of wsServer.clients) socket.terminate();
      }, 1000);
      await wsDisposable.dispose();
      clearTimeout(cutStragglers);
      wsServer.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await workers?.stop();
      fallback.stop();
      unwatchQueues();
      await Promise.all([
        catalog.stop(),
        models.stop(),
        placements.stop(),
        services.keys.stop(),
        services.recommendations.stop(),
        experiments.stop(),
      ]);
      await Promise.all([queue.close(), trainQueue.close(), replayQueue.close(), trainEvents.close()]);
      backlog.stop();
      await db.$disconnect();
      await ingestPool.end();
      for (const redis of [command, reads, queues, subscriber, trainEventsConnection]) redis.disconnect();
    },
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function isSubscription(document: DocumentNode): boolean {
  return document.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION && d.operation === 'subscription');
}

/** What onSubscribe puts in rootValue: Yoga's enveloped execute/subscribe for the operation. */
interface EnvelopedRoot {
  execute: (args: unknown) => OperationResult;
  subscribe: (args: unknown) => OperationResult;
}

/** A document that cannot be parsed (a syntax error, over MAX_TOKENS) is the client's error, not a crash. */
function parseOrError(parse: (source: string) => DocumentNode, source: string): DocumentNode | GraphQLError {
  try {
    return parse(source);
  } catch (error) {
    // By name: under some loaders graphql's ESM and CJS builds coexist and instanceof GraphQLError fails.
    if (error instanceof Error && error.name === 'GraphQLError') return new GraphQLError(error.message);
    throw error;
  }
}
