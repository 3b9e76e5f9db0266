import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestPool } from '../../src/db/client.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const TRACK = `mutation Track($input: EventInput!) { trackEvent(input: $input) { eventId status } }`;

interface Answer {
  status: string | undefined;
  ms: number;
}

async function track(gateway: RunningGateway, eventId: string): Promise<Answer> {
  const started = Date.now();
  const body = await gateway.graphql<{ trackEvent: { status: string } }>(TRACK, {
    input: { eventId, userId: uniqueId('user'), type: 'VIEW', itemId: 'sku-1' },
  });
  const status = body.data?.trackEvent.status ?? String(body.errors?.[0]?.extensions?.code);
  return { status, ms: Date.now() - started };
}

describe('Postgres pools', () => {
  it('when the ingest pool hears a connection error then its listener gets it and nothing throws', async () => {
    const config = await createTestConfig();
    const heard: string[] = [];
    const pool = createIngestPool(config.DATABASE_URL, { poolSize: 1, onError: (error) => heard.push(error.message) });

    const emit = () => pool.emit('error', new Error('Connection terminated unexpectedly'));

    expect(emit).not.toThrow();
    expect(heard).toEqual(['Connection terminated unexpectedly']);
    await pool.end();
  });

  it('when a client errors, checked out or idle, then each error is reported once and nothing throws', async () => {
    const config = await createTestConfig();
    const heard: string[] = [];
    const pool = createIngestPool(config.DATABASE_URL, { poolSize: 1, onError: (error) => heard.push(error.message) });
    const client = await pool.connect();

    const whileBusy = () => client.emit('error', new Error('terminated while busy'));
    expect(whileBusy).not.toThrow();
    client.release();
    const whileIdle = () => client.emit('error', new Error('terminated while idle'));

    expect(whileIdle).not.toThrow();
    expect(heard).toEqual(['terminated while busy', 'terminated while idle']);
    await pool.end();
  });

  describe('with a one-connection ingest pool and short timeouts', () => {
    let gateway: RunningGateway;
    let locker: pg.Client;

    beforeAll(async () => {
      const config = await createTestConfig({
        PG_INGEST_POOL_SIZE: '1',
        PG_STATEMENT_TIMEOUT_MS: '500',
        PG_CONNECT_TIMEOUT_MS: '300',
      });
      gateway = await startGateway(config, { workers: false });
      locker = new pg.Client({ connectionString: config.DATABASE_URL });
      await locker.connect();
    });
    afterAll(async () => {
      await locker.end();
      await gateway.stop();
    });

    it('when a statement hangs and the pool is taken then both requests answer UNAVAILABLE within their bounds', async () => {
      // An uncommitted row with the same eventId makes the gateway's insert wait on the unique index.
      const blocked = uniqueId('evt');
      await locker.query('BEGIN');
      await locker.query(
        `INSERT INTO "Event" ("eventId", "userId", "type", "itemId", "occurredAt") VALUES ($1, 'u', 'VIEW', 'sku-1', now())`,
        [blocked],
      );
      const slow = track(gateway, blocked);
      await eventually(async () => {
        // Inside a transaction the activity view is a snapshot: refresh it on every look.
        await locker.query('SELECT pg_stat_clear_snapshot()');
        const { rowCount } = await locker.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return (rowCount ?? 0) > 0;
      });

      const waiting = await track(gateway, uniqueId('evt'));
      const hung = await slow;
      await locker.query('ROLLBACK');

      expect(waiting.status).toBe('UNAVAILABLE');
      expect(waiting.ms).toBeLessThan(2000);
      expect(hung.status).toBe('UNAVAILABLE');
      expect(hung.ms).toBeLessThan(3000);
      expect((await track(gateway, uniqueId('evt'))).status).toBe('ACCEPTED');
    });
  });

  describe('behind a proxy that cuts Postgres off', () => {
    let gateway: RunningGateway;
    let proxy: TcpProxy;

    beforeAll(async () => {
      const direct = await createTestConfig();
      const url = new URL(direct.DATABASE_URL);
      proxy = await startTcpProxy(Number(url.port || 5432), url.hostname);
      url.port = String(proxy.port);
      gateway = await startGateway(
        await createTestConfig({
          DATABASE_URL: url.toString(),
          PG_CONNECT_TIMEOUT_MS: '500',
          PG_STATEMENT_TIMEOUT_MS: '1000',
        }),
        { workers: false },
      );
    });
    afterAll(async () => {
      await gateway.stop();
      await proxy.close();
    });

    it('when connections drop mid-request then every request is answered in time and the gateway recovers', async () => {
      const eventIds = Array.from({ length: 40 }, () => uniqueId('evt'));

      const answers = eventIds.map((eventId, index) =>
        // Spread over the cut: a few before it, most during the outage.
        new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
          index === 10 ? proxy.cut().then(() => track(gateway, eventId)) : track(gateway, eventId),
        ),
      );
      const settled = await Promise.all(answers);
      await proxy.restore();
      const after = await eventually(async () => {
        const answer = await track(gateway, uniqueId('evt'));
        return answer.status === 'ACCEPTED' && answer;
      }, 10_000);

      for (const answer of settled) {
        expect(['ACCEPTED', 'DUPLICATE', 'UNAVAILABLE']).toContain(answer.status);
        expect(answer.ms).toBeLessThan(5000);
      }
      expect(settled.some((answer) => answer.status === 'UNAVAILABLE')).toBe(true);
      expect(after.status).toBe('ACCEPTED');
    });
  });
});
