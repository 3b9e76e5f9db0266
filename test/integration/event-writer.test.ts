import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { NewEvent } from '../../src/db/events.ts';
import { createLogger } from '../../src/logger.ts';
import { createRedis } from '../../src/redis.ts';
import { EventWriter, MAX_IN_FLIGHT } from '../../src/services/event-writer.ts';
import { createEventsQueue, type EventsQueue } from '../../src/workers/queues.ts';
import { eventually } from '../helpers/gateway.ts';
import { TEST_REDIS_URL, TEST_SERVER_URL } from '../helpers/global-setup.ts';
import { redisTestPrefix, uniqueId } from '../helpers/test-env.ts';

const event = (): NewEvent => ({
  eventId: uniqueId('evt'),
  userId: 'u',
  type: 'VIEW',
  itemId: 'sku-1',
  sessionId: null,
  quantity: 1,
  value: null,
  occurredAt: new Date(),
  context: null,
  recommendationId: null,
});

describe('EventWriter', () => {
  const redis = createRedis(TEST_REDIS_URL, 'command');
  let queue: EventsQueue;

  beforeAll(() => {
    queue = createEventsQueue(redis, redisTestPrefix('writer-test'));
  });
  afterAll(async () => {
    await queue.close();
    redis.disconnect();
  });

  it('when Postgres stalls and more events wait than the bound then the next call is refused at once', async () => {
    const pool = new pg.Pool({ connectionString: `${TEST_SERVER_URL}/postgres`, max: 1 });
    // A stalled Postgres: every statement hangs until the test lets it fail.
    const stalled: (() => void)[] = [];
    vi.spyOn(pool, 'query').mockImplementation(
      () => new Promise<never>((_, reject) => stalled.push(() => reject(new Error('stalled')))),
    );
    const writer = new EventWriter({
      pool,
      queue,
      logger: createLogger('silent', 'test'),
      categoryOf: () => null,
      maxWaiting: 1,
    });
    const calls: Promise<unknown>[] = [];
    for (let inFlight = 1; inFlight <= MAX_IN_FLIGHT; inFlight++) {
      calls.push(writer.write([event()]).catch((error: unknown) => error));
      await eventually(async () => stalled.length === inFlight);
    }
    calls.push(writer.write([event()]).catch((error: unknown) => error));

    const refused = await writer.write([event()]).then(
      () => undefined,
      (error: unknown) => error,
    );
    let settled = 0;
    for (const call of calls) void call.then(() => settled++);
    // Failing the stalled statements lets the waiting call go, and stall in turn.
    await eventually(async () => {
      for (const fail of stalled.splice(0)) fail();
      return settled === calls.length;
    });

    expect(refused).toEqual(expect.objectContaining({ message: '1 events already wait for the event store' }));
    expect(stalled).toHaveLength(0);
    await pool.end();
  });
});
