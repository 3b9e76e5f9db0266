import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { type App, buildApp } from '../../src/app.ts';
import type { Config } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { startTrainer, type Trainer } from '../../src/workers/trainer.ts';

export interface RunningGateway {
  app: App;
  /** The metrics of the trainer that runs beside the gateway (its own process in production). */
  trainerMetrics: Metrics;
  config: Config;
  url: string;
  /** POSTs a GraphQL operation and returns the parsed JSON body. */
  graphql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<GraphQLBody<T>>;
  /** A graphql-ws client on this gateway (`connectionParams` go in connection_init); disposed by stop(). */
  wsClient(connectionParams?: Record<string, unknown>): Client;
  stop(): Promise<void>;
}

export interface GraphQLBody<T> {
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

/**
 * Starts the real gateway on a free port (silent unless given a logger); with `workers` (the default) the
 * feature worker runs in it, and a trainer too (in the test process: here nothing else shares its event loop).
 */
export async function startGateway(
  config: Config,
  options: { workers?: boolean; logger?: Logger } = {},
): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger('silent', 'test');
  const workers = options.workers ?? true;
  const app = await buildApp(config, { logger, workers });
  const trainerMetrics = createMetrics(['trainer']);
  const trainer: Trainer | undefined = workers
    ? await startTrainer(config, { db: app.db, logger, metrics: trainerMetrics })
    : undefined;
  const { url } = await app.start(0);
  // Settled before a test begins: a gateway whose first look at the features came before the worker marked
  // a fresh layout would otherwise push its open lists again (trigger FEATURES) in the middle of a test.
  if (workers) {
    await eventually(async () => {
      await app.fallback.check();
      return !app.fallback.rebuilding;
    }, 15_000);
  }
  const clients: Client[] = [];
  return {
    app,
    config,
    url,
    trainerMetrics,
    async graphql(query, variables) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      return response.json();
    },
    wsClient(connectionParams) {
      const client = createClient({
        url: `${url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        lazy: false,
        connectionParams,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((client) => client.dispose()));
      await trainer?.stop();
      await app.stop();
    },
  };
}

/** The values a subscription delivers, consumed one at a time with a deadline each. */
export function subscribe<T>(client: Client, query: string, variables: Record<string, unknown>) {
  const iterator = client.iterate<T>({ query, variables });
  return {
    async next(deadlineMs = 5000): Promise<{ data?: T | null; errors?: unknown }> {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no push within ${deadlineMs} ms`)), deadlineMs);
      });
      try {
        const result = await Promise.race([iterator.next(), deadline]);
        if (result.done) throw new Error('subscription ended');
        return result.value as { data?: T | null; errors?: unknown };
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      await iterator.return?.();
    },
  };
}

/** Polls until the check passes or the deadline passes; for state that converges asynchronously. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, deadlineMs = 5000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`condition not met within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
