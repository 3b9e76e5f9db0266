import type { Logger } from '../logger.ts';
import { ensureDatabase, migrate } from './migrator.ts';

/** Creates the database if missing and applies pending migrations; safe to run from every process at once. */
export async function prepareDatabase(databaseUrl: string, logger: Logger): Promise<void> {
  try {
    if (await ensureDatabase(databaseUrl)) logger.info('created the database');
  } catch (error) {
    const where = new URL(databaseUrl);
    throw new Error(
      `Postgres at ${where.host} did not accept us (${(error as Error).message}); is DATABASE_URL right?`,
      { cause: error },
    );
  }
  const applied = await migrate(databaseUrl);
  if (applied.length) logger.info({ migrations: applied }, 'applied migrations');
}
