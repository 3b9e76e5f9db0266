import type { ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import type { Redis } from 'ioredis';
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { ErrorCode } from '../errors.ts';
import type { Logger } from '../logger.ts';

/** The window over which `RATE_LIMIT_BURST` extra requests may be spent. */
const BURST_WINDOW_SECONDS = 10;
/** At most one "limiter fell back to memory" warning per this many ms, however many requests hit it. */
const WARN_EVERY_MS = 10_000;

/**
 * Who a request counts against: its client address for now. Once API keys exist, the key's id goes first
 * (`key:<id>`), so clients behind one address with their own keys get their own budgets.
 * Forwarding headers (`x-forwarded-for`) are not trusted: any client could pick its own budget with them.
 */
export function clientKey(request: { socket: { remoteAddress?: string | undefined } }): string {
  return `ip:${request.socket.remoteAddress ?? 'unknown'}`;
}

/** A request within budget, or refused with how long until the client may retry. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * Per-client request budgets: `perSecond` requests a second plus `burst` extra within any 10 s, counted in
 * Redis under `<prefix>:rl:` so every gateway shares them. When Redis does not answer the limiter fails
 * open to a per-process memory budget of the same size (so a Redis outage neither takes the gateway down
 * nor lifts every limit), with a warning.
 */
export class RateLimits {
  readonly #shared: BurstyRateLimiter;
  readonly #local: BurstyRateLimiter;
  readonly #logger: Pick<Logger, 'warn'>;
  #warnedAt = 0;

  constructor(deps: { redis: Redis; prefix: string; perSecond: number; burst: number; logger: Pick<Logger, 'warn'> }) {
    const { redis, prefix, perSecond, burst } = deps;
    const sustained = { points: perSecond, duration: 1 };
    const bursts = { points: burst, duration: BURST_WINDOW_SECONDS };
    // rejectIfRedisNotReady: answer from memory at once while Redis reconnects instead of waiting on it.
    this.#shared = new BurstyRateLimiter(
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `${prefix}:rl`,
        rejectIfRedisNotReady: true,
        ...sustained,
      }),
      new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}:rlb`, rejectIfRedisNotReady: true, ...bursts }),
    );
    this.#local = new BurstyRateLimiter(new RateLimiterMemory(sustained), new RateLimiterMemory(bursts));
    this.#logger = deps.logger;
  }

  /** Spends one request of `key`'s budget. */
  async consume(key: string): Promise<RateDecision> {
    try {
      await this.#shared.consume(key);
      return { allowed: true };
    } catch (error) {
      if (error instanceof RateLimiterRes) return refused(error);
      this.#warnFallback(error);
    }
    try {
      await this.#local.consume(key);
      return { allowed: true };
    } catch (error) {
      if (error instanceof RateLimiterRes) return refused(error);
      throw error;
    }
  }

  #warnFallback(error: unknown): void {
    const now = Date.now();
    if (now - this.#warnedAt < WARN_EVERY_MS) return;
    this.#warnedAt = now;
    const message = error instanceof Error ? error.message : String(error);
    this.#logger.warn({ err: message }, 'rate limiter: Redis did not answer; counting in this process only');
  }
}

function refused(result: RateLimiterRes): RateDecision {
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(result.msBeforeNext / 1000)) };
}

/**
 * Answers a request over its budget: 429 with `Retry-After`, and a body in the shape of its endpoint (a
 * GraphQL error with `extensions.code` on /graphql, the plain endpoints' `{ error }` elsewhere).
 */
export function refuseRateLimited(res: ServerResponse, retryAfterSeconds: number, shape: 'graphql' | 'rest'): void {
  const message = `too many requests; retry after ${retryAfterSeconds} s`;
  const code = ErrorCode.RATE_LIMITED;
  const body =
    shape === 'graphql'
      ? { errors: [{ message, extensions: { code, retryAfter: retryAfterSeconds } }] }
      : { error: { code, message, retryAfter: retryAfterSeconds } };
  res
    .writeHead(429, { 'content-type': 'application/json', 'retry-after': String(retryAfterSeconds) })
    .end(JSON.stringify(body));
}

/** The same refusal for a WebSocket subscribe message, as the error list graphql-ws sends back. */
export function rateLimitedError(retryAfterSeconds: number): GraphQLError {
  return new GraphQLError(`too many requests; retry after ${retryAfterSeconds} s`, {
    extensions: { code: ErrorCode.RATE_LIMITED, retryAfter: retryAfterSeconds },
  });
}
