import type { Redis } from 'ioredis';
import pg from 'pg';
import type { Config } from '../../src/config.ts';

/** Where a needle was found: `table` or `redis key`, and the row or key that holds it. */
export interface Finding {
  store: 'postgres' | 'redis';
  where: string;
}

/**
 * Every place in the test's database and Redis prefix that mentions any of `needles`: each row of every
 * table, as text (bytea shows as hex, so the needles' hex forms are looked for too), and each key under the
 * prefix, its name and its whole value, whatever its type.
 */
export async function findMentions(config: Config, redis: Redis, needles: readonly string[]): Promise<Finding[]> {
  const forms = needles.flatMap((needle) => [needle, Buffer.from(needle).toString('hex')]);
  const found: Finding[] = [];
  const client = new pg.Client({ connectionString: config.DATABASE_URL });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    for (const { name } of tables) {
      const { rows } = await client.query<{ row: string }>(`SELECT t::text AS row FROM ${pg.escapeIdentifier(name)} t`);
      for (const { row } of rows) {
        if (forms.some((form) => row.includes(form)))
          found.push({ store: 'postgres', where: `${name}: ${row.slice(0, 200)}` });
      }
    }
  } finally {
    await client.end();
  }
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.REDIS_PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const value = await redisValue(redis, key);
      if (forms.some((form) => key.includes(form) || value.includes(form))) {
        found.push({ store: 'redis', where: `${key}: ${value.slice(0, 200)}` });
      }
    }
  } while (cursor !== '0');
  return found;
}

/** A key's whole value as one string (binary parts as latin1 and hex), whatever its type. */
async function redisValue(redis: Redis, key: string): Promise<string> {
  const type = await redis.type(key);
  const parts: Buffer[] = [];
  if (type === 'string') parts.push((await redis.getBuffer(key)) ?? Buffer.alloc(0));
  else if (type === 'hash')
    parts.push(
      ...(await redis
        .hgetallBuffer(key)
        .then((hash) => Object.entries(hash).flatMap(([field, value]) => [Buffer.from(field), value]))),
    );
  else if (type === 'zset') parts.push(...(await redis.zrangeBuffer(key, 0, -1)));
  else if (type === 'list') parts.push(...(await redis.lrangeBuffer(key, 0, -1)));
  else if (type === 'set') parts.push(...(await redis.smembersBuffer(key)));
  else if (type === 'stream') {
    const entries = await redis.xrange(key, '-', '+');
    parts.push(Buffer.from(JSON.stringify(entries)));
  }
  return parts.map((part) => `${part.toString('latin1')} ${part.toString('hex')}`).join(' ');
}
