import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { connectRedis, createRedis } from '../../src/redis.ts';
import { type FeatureEvent, FeatureStore, ReplayRunningError } from '../../src/services/features.ts';
import { ShopperIds } from '../../src/services/shopper-ids.ts';
import { LiveEventsReader, LiveEventsWriter, liveEventsKey } from '../../src/workers/live-events.ts';
import type { EventJob, QueuedEvent } from '../../src/workers/queues.ts';
import { eventually } from '../helpers/gateway.ts';
import { TEST_REDIS_URL } from '../helpers/global-setup.ts';
import { redisTestPrefix, uniqueId } from '../helpers/test-env.ts';

const logger = createLogger('silent', 'test');
const connections = Array.from({ length: 3 }, () => createRedis(TEST_REDIS_URL, 'blocking'));
const [writerRedis, readerRedis, otherRedis] = connections as [
  (typeof connections)[0],
  (typeof connections)[0],
  (typeof connections)[0],
];
const readers: LiveEventsReader[] = [];

afterAll(async () => {
  await Promise.all(readers.map((reader) => reader.stop()));
  for (const redis of connections) redis.disconnect();
});

function queuedEvent(id: number): QueuedEvent {
  const now = new Date().toISOString();
  return {
    id: String(id),
    eventId: uniqueId('evt'),
    userId: uniqueId('u'),
    type: 'VIEW',
    itemId: 'sku-1',
    category: null,
    occurredAt: now,
    receivedAt: now,
  };
}

const jobOf = (...events: QueuedEvent[]): EventJob => ({ eventIds: events.map((e) => e.eventId), events });

function startReader(prefix: string, apply: (job: EventJob) => Promise<void>, redis = readerRedis) {
  const reader = new LiveEventsReader({ redis, prefix, logger, apply, retryLater: () => false });
  readers.push(reader);
  reader.start();
  return reader;
}

describe('live events hand-off', () => {
  it('when a gateway appends stored batches then a worker applies them in order and leaves nothing behind', async () => {
    const prefix = redisTestPrefix('live');
    await connectRedis(writerRedis, TEST_REDIS_URL);
    const writer = new LiveEventsWriter(writerRedis, prefix);
    const applied: string[] = [];
    const reader = startReader(prefix, async (job) => {
      applied.push(...job.eventIds);
    });
    const events = [queuedEvent(1), queuedEvent(2), queuedEvent(3)];
    for (const event of events) await writer.append(jobOf(event));

    await eventually(async () => applied.length === 3);
    expect(applied).toEqual(events.map((e) => e.eventId));
    // Acknowledged entries are deleted: the stream holds only what is not applied yet.
    await eventually(async () => (await LiveEventsReader.backlog(writerRedis, prefix)) === 0);
    await reader.stop();
  });

  it('when a worker read entries and died before acknowledging them then another worker claims and applies them', async () => {
    const prefix = redisTestPrefix('live');
    const key = liveEventsKey(prefix);
    const writer = new LiveEventsWriter(writerRedis, prefix);
    await writerRedis.xgroup('CREATE', key, 'feature-workers', '0', 'MKSTREAM');
    const event = queuedEvent(7);
    await writer.append(jobOf(event));
    // The worker that died: it read the entry and never acknowledged it.
    await otherRedis.xreadgroup('GROUP', 'feature-workers', 'dead-worker', 'COUNT', 10, 'STREAMS', key, '>');
    const applied: string[] = [];
    const reader = startReader(prefix, async (job) => {
      applied.push(...job.eventIds);
    });

    expect(await reader.claimStale(0)).toBe(1);
    await eventually(async () => applied.length === 1);
    expect(applied).toEqual([event.eventId]);
    await eventually(async () => (await LiveEventsReader.backlog(writerRedis, prefix)) === 0);
    await reader.stop();
  });

  it('when a batch keeps failing then it is retried a few times and then left to the outbox sweep', async () => {
    const prefix = redisTestPrefix('live');
    const writer = new LiveEventsWriter(writerRedis, prefix);
    let attempts = 0;
    const reader = startReader(prefix, async () => {
      attempts++;
      throw new Error('the event store is down');
    });
    await writer.append(jobOf(queuedEvent(9)));

    // The sweep re-queues the stored, unprocessed events on BullMQ; the stream lets go of them.
    await eventually(async () => (await LiveEventsReader.backlog(writerRedis, prefix)) === 0, 15_000);
    expect(attempts).toBe(5);
    await reader.stop();
  });
});

describe('replay pause of live applies', () => {
  const redis = createRedis(TEST_REDIS_URL, 'command');
  afterAll(() => redis.disconnect());

  it('when a replay paused live applies then the worker’s apply is refused until it resumes, and the replay’s own applies go on', async () => {
    await connectRedis(redis, TEST_REDIS_URL);
    const prefix = redisTestPrefix('pause');
    const features = new FeatureStore(redis, {
      prefix,
      halfLifeHours: 24,
      weights: WEIGHTS,
      shopperTtlDays: 1,
      ids: new ShopperIds(''),
    });
    const userId = uniqueId('u');
    const event = (id: bigint, itemId: string): FeatureEvent => ({
      id,
      eventId: uniqueId('evt'),
      userId,
      type: 'VIEW',
      itemId,
      category: null,
      occurredAt: new Date(),
      receivedAt: new Date(),
    });

    await features.pauseLiveApplies(10_000);
    const refused = await features.applyAndReadHistories([event(1n, 'a')], [userId]).catch((error: unknown) => error);
    const refusedMany = await features.applyMany([event(4n, 'd')], 'refuse').catch((error: unknown) => error);
    await features.applyMany([event(2n, 'b')]);
    await features.resumeLiveApplies();
    const after = await features.applyAndReadHistories([event(3n, 'c')], [userId]);

    expect(refused).toBeInstanceOf(ReplayRunningError);
    expect(refusedMany).toBeInstanceOf(ReplayRunningError);
    expect([...(after.histories.get(userId)?.keys() ?? [])].sort()).toEqual(['b', 'c']);
  });
});

const WEIGHTS = { VIEW: 1, CLICK: 2, ADD_TO_CART: 4, REMOVE_FROM_CART: 0, PURCHASE: 8 } as const;
