import http from 'node:http';
import autocannon from 'autocannon';

// Plain node:http with keep-alive: the load generator shares the two cores with the system under test, and
// fetch costs it about twice the CPU per request. Admin calls (retrain, rollback, catalogue changes, model
// checks) have sockets of their own, so they do not queue behind the load's requests. An idle socket is
// closed after 4 s, before the server's keep-alive timeout (Node's 5 s) can close it as a request is being
// sent, and the sockets are used in turn, so none idles while the load runs: a reset that still happens
// (requestErrors in the results) is the gateway's doing, not this client's.
const SOCKET_OPTIONS = { keepAlive: true, timeout: 4000, scheduling: 'fifo' } as const;
const loadAgent = new http.Agent({ ...SOCKET_OPTIONS, maxSockets: 64 });
const adminAgent = new http.Agent({ ...SOCKET_OPTIONS, maxSockets: 4 });

function request(agent: http.Agent, url: string, query: string, variables: Record<string, unknown>): Promise<unknown> {
  const payload = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      `${url}/graphql`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown; errors?: unknown[] };
            if (body.errors) reject(new Error(JSON.stringify(body.errors)));
            else resolve(body.data);
          } catch (error) {
            reject(error);
          }
        });
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

/** POSTs one GraphQL operation to `<url>/graphql` on the load's sockets; resolves with `data`, rejects on errors. */
export function post(url: string, query: string, variables: Record<string, unknown> = {}): Promise<unknown> {
  return request(loadAgent, url, query, variables);
}

/** `post` on sockets of its own, for the few calls that must not wait behind the load. */
export function postAdmin(url: string, query: string, variables: Record<string, unknown> = {}): Promise<unknown> {
  return request(adminAgent, url, query, variables);
}

/** How long a bulk sender waits, in all, for the workers to catch up before it gives up. */
const OVERLOAD_PATIENCE_MS = 300_000;

/**
 * `postAdmin` for bulk event loads (a benchmark's setup): the gateway refuses events with OVERLOADED, and
 * acknowledges nothing, while the workers are far behind; this waits a second and sends the batch again, as a
 * storefront's retry would, so a setup that sends faster than the workers apply just goes at their pace.
 */
export async function postAdminWhenAccepted(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<unknown> {
  const deadline = Date.now() + OVERLOAD_PATIENCE_MS;
  for (;;) {
    try {
      return await postAdmin(url, query, variables);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.includes('"OVERLOADED"') || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/** Closes the keep-alive sockets `post` and `postAdmin` hold. */
export function closeHttp(): void {
  loadAgent.destroy();
  adminAgent.destroy();
}

/**
 * The trivial query's closed-loop ceiling: `{ __typename }` from `connections` autocannon clients for
 * `seconds`, the same measurement as bench/ingest.ts. Rates elsewhere are given as fractions of it, since
 * machines of the same kind differ by 3× (ENVIRONMENT.md, "Speed differs between machines").
 */
export async function trivialQueryCeiling(url: string, seconds: number, connections: number) {
  const result = await autocannon({
    url: `${url}/graphql`,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ __typename }' }),
      },
    ],
  });
  if (result.non2xx || result.errors)
    throw new Error(`ceiling run failed: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    seconds,
    connections,
  };
}
