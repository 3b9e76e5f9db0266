import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Db } from '../db/client.ts';
import { DomainError, ErrorCode, UnavailableError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RecommendationService } from '../services/recommendations.ts';
import { sendMetrics } from './metrics-server.ts';
import { restRouteLabel } from './request-metrics.ts';

/**
 * The plain HTTP endpoints beside /graphql: health and readiness probes, Prometheus metrics, the storefront
 * JSON endpoint `GET /api/recommendations?user_id=…&k=…`, and the demo page. Each request is timed into
 * `pgw_request_duration_seconds{kind="rest"}`.
 */
export function makeRestRoutes(deps: {
  db: Db;
  redis: Redis;
  recommendations: RecommendationService;
  logger: Logger;
  metrics: Metrics;
  demoPage: Buffer;
}) {
  const { db, redis, recommendations, logger, metrics, demoPage } = deps;
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
      const ready = postgres === 'ok' && redisState === 'ok';
      return send(ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', postgres, redis: redisState });
    }
    if (url.pathname === '/api/recommendations' && req.method === 'GET') {
      const userId = url.searchParams.get('user_id');
      if (!userId) {
        return send(400, {
          error: { code: ErrorCode.INVALID_INPUT, field: 'user_id', message: 'user_id is required' },
        });
      }
      const kParam = url.searchParams.get('k') ?? '10';
      try {
        const list = await recommendations.recommend(userId, /^\d+$/.test(kParam) ? Number(kParam) : Number.NaN);
        return send(200, {
          user_id: list.userId,
          recommendation_id: list.recommendationId,
          strategy: list.strategy,
          recommendations: list.items.map(({ item, score }) => ({
            product_id: item.id,
            score,
            name: item.name,
            price: item.price?.toFixed(2) ?? null,
            currency: item.currency,
          })),
        });
      } catch (error) {
        if (error instanceof DomainError) {
          if (error instanceof UnavailableError) metrics.dependencyErrors.inc({ dependency: error.dependency });
          const status = error.code === ErrorCode.UNAVAILABLE ? 503 : 400;
          return send(status, { error: { code: error.code, field: error.field, message: error.message } });
        }
        logger.error({ err: error }, 'plain recommendations endpoint failed');
        return send(500, { error: { code: 'INTERNAL', message: 'Unexpected error' } });
      }
    }
    if (url.pathname === '/demo') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(demoPage);
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
