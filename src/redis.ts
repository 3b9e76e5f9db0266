import { Redis, type RedisOptions } from 'ioredis';

/**
 * The Redis connections a process opens, one per role:
 * - `command`: request-path reads and writes; fails fast while Redis is down instead of queueing commands,
 *   so a request answers with an error rather than hanging.
 * - `reads`: the gateway's reads for lists, failing fast like `command`, with auto-pipelining: the commands
 *   issued in one tick (a list's bought items and vector, and those of other lists computed meanwhile) go
 *   out in one write. Kept apart from BullMQ, whose scripts are not meant to be auto-pipelined.
 * - `queues`: BullMQ queues (adding jobs), failing fast like `command`. Apart from the connections pipelines
 *   are built on: BullMQ defines its 64 scripts on the connection it is given, and ioredis copies every
 *   defined script onto each new pipeline (measured: 100 µs per `pipeline()` with them, 21 µs without).
 * - `subscriber`: pub/sub only (a subscribed connection can do nothing else).
 * - `blocking`: BullMQ workers, which block on Redis and must retry forever.
 */
export type RedisRole = 'command' | 'reads' | 'queues' | 'subscriber' | 'blocking';

export function createRedis(url: string, role: RedisRole): Redis {
  const options: RedisOptions = {
    connectionName: `pgw-${role}`,
    lazyConnect: true,
    ...(role === 'command' || role === 'reads' || role === 'queues'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1 }
      : {}),
    ...(role === 'reads' ? { enableAutoPipelining: true } : {}),
    ...(role === 'blocking' ? { maxRetriesPerRequest: null } : {}),
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
  };
  return new Redis(url, options);
}

/** Connects, or throws a message that says which Redis did not answer. */
export async function connectRedis(redis: Redis, url: string): Promise<void> {
  try {
    if (redis.status === 'ready') return;
    if (redis.status === 'wait') {
      await redis.connect();
    } else {
      // Already connecting (a library such as BullMQ started it): wait for the outcome.
      await new Promise<void>((resolve, reject) => {
        redis.once('ready', resolve);
        redis.once('error', reject);
      });
    }
  } catch (error) {
    const where = new URL(url);
    throw new Error(`Redis at ${where.host} did not answer (${(error as Error).message}); is REDIS_URL right?`, {
      cause: error,
    });
  }
}

/**
 * The connections of a background role (feature worker, trainer): commands, BullMQ's queues and blocking
 * reads, pub/sub.
 */
export interface RoleConnections {
  command: Redis;
  queues: Redis;
  blocking: Redis;
  subscriber: Redis;
  disconnect(): void;
}

/** Opens and connects a background role's connections; `onError` hears every connection error. */
export async function connectRoleConnections(url: string, onError: (error: Error) => void): Promise<RoleConnections> {
  const command = createRedis(url, 'command');
  const queues = createRedis(url, 'queues');
  const blocking = createRedis(url, 'blocking');
  const subscriber = createRedis(url, 'subscriber');
  const all = [command, queues, blocking, subscriber];
  const disconnect = () => {
    for (const redis of all) redis.disconnect();
  };
  for (const redis of all) redis.on('error', onError);
  try {
    await Promise.all(all.map((redis) => connectRedis(redis, url)));
  } catch (error) {
    disconnect();
    throw error;
  }
  return { command, queues, blocking, subscriber, disconnect };
}
