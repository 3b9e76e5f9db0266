import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GraphQLError } from 'graphql';
import type { Redis } from 'ioredis';
import type { VerifyClientCallbackAsync } from 'ws';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { limitBody } from './body-limit.ts';
import { makeCorsPolicy } from './cors.ts';
import { clientKey, RateLimits, rateLimitedError, refuseRateLimited } from './rate-limit.ts';

/**
 * The abuse limits in front of the gateway's handlers, composed once: the per-client rate limit (on the
 * API over HTTP, WebSocket connections and subscribe messages), the body size cap and the CORS allow-list (Yoga applies it on /graphql, this on `/api/*` and upgrades).
 */
export function makeGuards(config: Config, deps: { redis: Redis; logger: Logger; graphqlEndpoint: string }) {
  const cors = makeCorsPolicy(config.CORS_ORIGINS);
  const rateLimits =
    config.RATE_LIMIT_PER_SECOND > 0
      ? new RateLimits({
          redis: deps.redis,
          prefix: config.REDIS_PREFIX,
          perSecond: config.RATE_LIMIT_PER_SECOND,
          burst: config.RATE_LIMIT_BURST,
          logger: deps.logger,
        })
      : undefined;

  return {
    /** Yoga's `cors` option. */
    cors: (request: Request) => cors.yoga(request),

    /** Resolves `true` when an HTTP request may go on to its handler; otherwise it has been answered. */
    async admit(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
      const graphql = url.pathname === deps.graphqlEndpoint;
      const api = url.pathname.startsWith('/api/');
      if (api) for (const [name, value] of Object.entries(cors.headers(req))) res.setHeader(name, value);
      // Probes, metrics and the pages are not rate-limited: only the API is.
      if (rateLimits && (graphql || api)) {
        const decision = await rateLimits.consume(clientKey(req));
        if (!decision.allowed) {
          refuseRateLimited(res, decision.retryAfterSeconds, graphql ? 'graphql' : 'rest');
          return false;
        }
      }
      return limitBody(req, res, config.MAX_BODY_BYTES);
    },

    /** `WebSocketServer`'s `verifyClient`: 403 for a page on a foreign origin, 429 over the budget. */
    verifyUpgrade: ((info, accept) => {
      if (!cors.allowsUpgrade(info.req)) return accept(false, 403, 'origin not allowed');
      if (!rateLimits) return accept(true);
      rateLimits.consume(clientKey(info.req)).then(
        (decision) =>
          decision.allowed
            ? accept(true)
            : accept(false, 429, 'too many requests', { 'retry-after': String(decision.retryAfterSeconds) }),
        () => accept(false, 500),
      );
    }) satisfies VerifyClientCallbackAsync,

    /** For a subscribe message: the errors to answer with when over budget, else nothing. */
    async refuseSubscribe(request: IncomingMessage): Promise<GraphQLError[] | undefined> {
      if (!rateLimits) return undefined;
      const decision = await rateLimits.consume(clientKey(request));
      return decision.allowed ? undefined : [rateLimitedError(decision.retryAfterSeconds)];
    },
  };
}
