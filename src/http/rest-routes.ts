import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Db } from '../db/client.ts';
import { DomainError, ErrorCode, InvalidInputError, UnavailableError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { assertMayActAs, type Caller, type Credentials } from '../services/access.ts';
import type { RecommendationService, RuleRequest } from '../services/recommendations.ts';
import type { ItemFilterInput } from '../services/rules.ts';
import type { ShopperIds } from '../services/shopper-ids.ts';
import type { WarmUp } from '../services/warm-up.ts';
import { isUtf8QueryString } from './input-guards.ts';
import { sendMetrics } from './metrics-server.ts';
import { restRouteLabel } from './request-metrics.ts';
import type { StaticFile } from './static-files.ts';

/**
 * The plain HTTP endpoints beside /graphql: health and readiness probes, Prometheus metrics, the storefront
 * JSON endpoint `GET /api/recommendations?user_id=…&k=…` (with rules: `category` repeatable, `price_min`,
 * `price_max`, `exclude` comma-separated, `placement`), and the browser pages (demo storefront,
 * dashboard). Each request is timed into `pgw_request_duration_seconds{kind="rest"}`.
 */
export function makeRestRoutes(deps: {
  db: Db;
  redis: Redis;
  recommendations: RecommendationService;
  /** Turns the shop's shopper id into the gateway's (its pseudonym with USER_ID_KEY). */
  ids: ShopperIds;
  /** Resolves the caller from the Authorization and x-shopper-token headers, as /graphql does. */
  callerOf: (credentials: Credentials) => Promise<Caller>;
  warmUp: WarmUp;
  logger: Logger;
  metrics: Metrics;
  files: ReadonlyMap<string, StaticFile>;
}) {
  const { db, redis, recommendations, ids, callerOf, warmUp, logger, metrics, files } = deps;
  const probe = (check: Promise<unknown>) =>
    check.then(
      () => 'ok',
      () => 'unavailable',
    );

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const observe = metrics.requestDuration.startTimer({ kind: 'rest', operation: restRouteLabel(url.pathname) });
    res.once('close', () => observe());
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (url.pathname === '/health') return send(200, { status: 'ok' });
    if (url.pathname === '/metrics') return sendMetrics(metrics.registry, res);
    if (url.pathname === '/ready') {
      const [postgres, redisState] = await Promise.all([probe(db.$queryRaw`SELECT 1`), probe(redis.ping())]);
      if (postgres !== 'ok' || redisState !== 'ok') {
        return send(503, { status: 'not ready', postgres, redis: redisState });
      }
      // Ready to serve as soon as there is a catalogue; what still warms (replay, first model) is listed.
      const { serving, warming } = await warmUp.state().catch(() => ({ serving: true, warming: {} }));
      // Rebuilding still serves (lists fall back honestly), so it stays 200: every gateway rebuilds at once, and
      // a load balancer that dropped them all would serve nothing.
      const status = !serving ? 'warming' : 'features' in warming ? 'rebuilding' : 'ready';
      return send(serving ? 200 : 503, { status, postgres, redis: redisState, warming });
    }
    // A browser's preflight for the key headers; the CORS headers (or their absence) were set by the guards.
    if (url.pathname === '/api/recommendations' && req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/api/recommendations' && req.method === 'GET') {
      if (!isUtf8QueryString(url.search)) {
        return send(400, {
          error: {
            code: ErrorCode.INVALID_INPUT,
            field: 'query string',
            rule: 'format',
            message: 'must be valid UTF-8',
          },
        });
      }
      const userId = url.searchParams.get('user_id');
      if (!userId) {
        return send(400, {
          error: { code: ErrorCode.INVALID_INPUT, field: 'user_id', rule: 'required', message: 'user_id is required' },
        });
      }
      const kParam = url.searchParams.get('k') ?? '10';
      try {
        const caller = await callerOf({
          authorization: req.headers.authorization,
          shopperToken: req.headers['x-shopper-token'],
        });
        assertMayActAs(caller, userId);
        const list = await recommendations.recommend(
          ids.internal('userId', userId),
          /^\d+$/.test(kParam) ? Number(kParam) : Number.NaN,
          ruleRequestOf(url.searchParams),
        );
        return send(200, {
          // As the caller sent it (the gateway may know the shopper by a pseudonym).
          user_id: userId,
          recommendation_id: list.recommendationId,
          strategy: list.strategy,
          // The experiment variant that served the list (null outside any); recommendation_id attributes to it.
          experiment: list.experiment && {
            id: list.experiment.id,
            variant: list.experiment.variant,
            phase: list.experiment.phase,
          },
          recommendations: list.items.map(({ item, score, explanation }) => ({
            product_id: item.id,
            score,
            name: item.name,
            category: item.category,
            price: item.price?.toFixed(2) ?? null,
            currency: item.currency,
            source: explanation.source,
            anchor_product_id: explanation.anchorItem?.id ?? null,
          })),
        });
      } catch (error) {
        if (error instanceof DomainError) {
          if (error instanceof UnavailableError) metrics.dependencyErrors.inc({ dependency: error.dependency });
          const status =
            error.code === ErrorCode.UNAVAILABLE
              ? 503
              : error.code === ErrorCode.UNAUTHENTICATED
                ? 401
                : error.code === ErrorCode.FORBIDDEN
                  ? 403
                  : error.code === ErrorCode.NOT_FOUND
                    ? 404
                    : 400;
          return send(status, {
            // Named as this endpoint spells its parameter (user_id), not as the service does (userId).
            error: {
              code: error.code,
              field: restField(error.field),
              rule: error.rule,
              message: error.message,
            },
          });
        }
        logger.error({ err: error }, 'plain recommendations endpoint failed');
        return send(500, { error: { code: 'INTERNAL', message: 'Unexpected error' } });
      }
    }
    // TODO(access control): /dashboard and its files become admin-only once the gateway has admin sessions.
    const file = req.method === 'GET' || req.method === 'HEAD' ? files.get(url.pathname) : undefined;
    if (file) {
      res.writeHead(200, { 'content-type': file.contentType, 'cache-control': 'no-cache' }).end(file.body);
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(302, { location: '/demo' }).end();
      return;
    }
    // A client's mistake (or a scanner): worth a line, not an alert.
    logger.info({ method: req.method, path: url.pathname }, 'no such route');
    send(404, { error: { code: ErrorCode.NOT_FOUND, message: `no route ${url.pathname}` } });
  };
}

/** The service's name of a field that has a query parameter here, as this endpoint spells it. */
function restField(field: string | undefined): string | undefined {
  if (field === undefined) return undefined;
  if (field === 'userId') return 'user_id';
  if (field === 'rules.filter.priceMin') return 'price_min';
  if (field === 'rules.filter.priceMax') return 'price_max';
  if (field.startsWith('rules.filter.categories')) return 'category';
  if (field.startsWith('rules.filter.excludeItemIds')) return 'exclude';
  return field;
}

/** A price parameter as a number; INVALID_INPUT when it is not one. */
function priceParam(params: URLSearchParams, name: 'price_min' | 'price_max'): number | undefined {
  const text = params.get(name);
  if (text === null || text === '') return undefined;
  const value = Number(text);
  if (!/^-?\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(value)) {
    throw new InvalidInputError(name, 'type', `must be a decimal number (got ${JSON.stringify(text)})`);
  }
  return value;
}

/**
 * The rules the query string asks for: `category` (repeatable), `price_min`, `price_max`, `exclude` (ids,
 * comma-separated) and `placement`; the same validation as GraphQL's RulesInput applies.
 */
function ruleRequestOf(params: URLSearchParams): RuleRequest {
  const filter: ItemFilterInput = {};
  const categories = params.getAll('category');
  if (categories.length > 0) filter.categories = categories;
  const priceMin = priceParam(params, 'price_min');
  if (priceMin !== undefined) filter.priceMin = priceMin;
  const priceMax = priceParam(params, 'price_max');
  if (priceMax !== undefined) filter.priceMax = priceMax;
  const exclude = params
    .getAll('exclude')
    .flatMap((value) => value.split(','))
    .filter((id) => id !== '');
  if (exclude.length > 0) filter.excludeItemIds = exclude;
  const placement = params.get('placement');
  return {
    placement: placement === null || placement === '' ? null : placement,
    rules: Object.keys(filter).length > 0 ? { filter } : null,
  };
}
