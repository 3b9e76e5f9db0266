import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, migrate, readMigrations } from '../../src/db/migrator.ts';
import { createTestConfig } from '../helpers/test-env.ts';

describe('migrate', () => {
  it('when run on a migrated database then it applies nothing and keeps Prisma’s records', async () => {
    const { DATABASE_URL } = await createTestConfig();

    const applied = await migrate(DATABASE_URL);

    expect(applied).toEqual([]);
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    const { rows } = await client.query(
      'SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name',
    );
    await client.end();
    expect(rows).toEqual(
      readMigrations().map(({ name }) => ({
        migration_name: name,
        checksum: createHash('sha256')
          .update(readFileSync(`${MIGRATIONS_DIR}${name}/migration.sql`))
          .digest('hex'),
        finished_at: expect.any(Date),
        applied_steps_count: 1,
      })),
    );
  });

  it('when an applied migration was edited then it refuses with a message saying what to do', async () => {
    const { DATABASE_URL } = await createTestConfig();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`UPDATE "_prisma_migrations" SET checksum = 'tampered'`);
    await client.end();

    await expect(migrate(DATABASE_URL)).rejects.toThrow(/was changed after it was applied.*Add a new migration/);
  });
});
