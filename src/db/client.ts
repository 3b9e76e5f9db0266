import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';

export type Db = PrismaClient;

/** One Prisma client over node-postgres; the pool size bounds this process's share of Postgres connections. */
export function createDb(databaseUrl: string, poolSize = 20): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl, max: poolSize }) });
}
