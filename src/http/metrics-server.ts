import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';

/** Answers a scrape: the registry in Prometheus text format. */
export async function sendMetrics(registry: Registry, res: ServerResponse): Promise<void> {
  const body = await registry.metrics();
  res.writeHead(200, { 'content-type': registry.contentType }).end(body);
}

export interface MetricsServer {
  /** The port it listens on (the one asked for, or the free one picked for 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A small HTTP server for processes without a gateway (feature worker, trainer): `GET /metrics` for
 * Prometheus and `GET /health` for a liveness probe, nothing else.
 */
export async function startMetricsServer(options: {
  registry: Registry;
  port: number;
  host?: string;
  logger: Logger;
}): Promise<MetricsServer> {
  const { registry, logger } = options;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/metrics') {
      sendMetrics(registry, res).catch((error) => {
        logger.error({ err: error }, 'collecting metrics failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
      return;
    }
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  logger.info({ port }, 'metrics listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
