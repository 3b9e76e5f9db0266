import type { IncomingMessage } from 'node:http';
import type { CORSOptions } from 'graphql-yoga';

/**
 * The `CORS_ORIGINS` allow-list, for Yoga's `cors` option and for WebSocket upgrades. A listed origin gets
 * CORS headers with credentials; `*` admits every origin, never with credentials; any other cross-origin
 * page gets no CORS headers, so the browser keeps the answer from it.
 */
export function makeCorsPolicy(origins: readonly string[]) {
  const listed = new Set(origins.filter((origin) => origin !== '*'));
  const anyOrigin = origins.includes('*');
  return {
    /** Yoga's `cors` option: headers for an allowed `Origin`, none for another. */
    yoga(request: Request): CORSOptions {
      const origin = request.headers.get('origin');
      if (origin === null) return false;
      if (listed.has(origin)) return { origin: [origin], credentials: true };
      if (anyOrigin) return { origin: [origin], credentials: false };
      return false;
    },
    /**
     * The same decision as headers for the plain JSON endpoints (`/api/*`): GETs, with the API key and the
     * shopper token as headers (which makes the browser ask first with a preflight OPTIONS).
     */
    headers(request: IncomingMessage): Record<string, string> {
      const origin = request.headers.origin;
      if (origin === undefined || (!anyOrigin && !listed.has(origin))) return {};
      const credentials: Record<string, string> = listed.has(origin)
        ? { 'access-control-allow-credentials': 'true' }
        : {};
      return {
        'access-control-allow-origin': origin,
        'access-control-allow-methods': 'GET',
        'access-control-allow-headers': 'authorization, x-shopper-token',
        vary: 'Origin',
        ...credentials,
      };
    },
    /**
     * Whether a WebSocket upgrade may proceed: browsers always send `Origin`, so one that is neither the
     * gateway's own host nor allowed is a page elsewhere riding on the visitor's network; a client without
     * `Origin` (a server, a script) is not a browser and is let through.
     */
    allowsUpgrade(request: IncomingMessage): boolean {
      const origin = request.headers.origin;
      if (origin === undefined || anyOrigin || listed.has(origin)) return true;
      return isSameOrigin(origin, request.headers.host);
    },
  };
}

function isSameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
