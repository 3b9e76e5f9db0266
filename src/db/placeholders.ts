import type { Db } from './client.ts';

/** Serialises placeholder creation across workers, so the cap is exact (one key for the whole database). */
const PLACEHOLDER_LOCK = 0x70677770;

/** What the catalogue table holds of some item ids. */
export interface ItemRows {
  declared: string[];
  placeholders: string[];
}

/** Which of these ids have an Item row, declared or placeholder (one indexed read). */
export async function findItemRows(db: Db, itemIds: readonly string[]): Promise<ItemRows> {
  if (itemIds.length === 0) return { declared: [], placeholders: [] };
  const rows = await db.$queryRaw<{ id: string; placeholder: boolean }[]>`
    SELECT "id", "placeholder" FROM "Item" WHERE "id" = ANY(${itemIds}::text[])`;
  return {
    declared: rows.filter((row) => !row.placeholder).map((row) => row.id),
    placeholders: rows.filter((row) => row.placeholder).map((row) => row.id),
  };
}

/**
 * Creates non-recommendable placeholder rows for these unknown item ids while fewer than `cap` placeholders
 * exist (in id order, so concurrent callers agree), under a transaction-scoped advisory lock so that workers
 * racing each other cannot overshoot the cap. Returns the ids that now have a placeholder; the rest stay
 * unknown (their events are stored, but count in no shop-wide feature).
 */
export async function createPlaceholders(db: Db, itemIds: readonly string[], cap: number): Promise<string[]> {
  if (itemIds.length === 0 || cap === 0) return [];
  const [, rows] = await db.$transaction([
    db.$executeRaw`SELECT pg_advisory_xact_lock(${PLACEHOLDER_LOCK}::bigint)`,
    db.$queryRaw<{ id: string }[]>`
      WITH wanted AS (
        SELECT DISTINCT t."id" FROM UNNEST(${itemIds}::text[]) AS t("id")
        WHERE NOT EXISTS (SELECT 1 FROM "Item" i WHERE i."id" = t."id")
      ), created AS (
        INSERT INTO "Item" ("id", "name", "inStock", "placeholder")
        SELECT "id", "id", false, true FROM wanted ORDER BY "id"
        LIMIT GREATEST(0, ${cap}::int - (SELECT count(*) FROM "Item" WHERE "placeholder"))
        ON CONFLICT ("id") DO NOTHING
        RETURNING "id"
      )
      SELECT "id" FROM created
      UNION
      SELECT i."id" FROM "Item" i WHERE i."id" = ANY(${itemIds}::text[]) AND i."placeholder"`,
  ]);
  return rows.map((row) => row.id);
}

/**
 * Deletes up to `limit` placeholders created more than `windowMs` ago and never declared since (`upsertItems`
 * clears the flag), oldest first, and returns their ids. Their events stay in the log.
 */
export async function deleteStalePlaceholders(db: Db, windowMs: number, limit: number): Promise<string[]> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    DELETE FROM "Item" WHERE "id" IN (
      SELECT "id" FROM "Item"
      WHERE "placeholder" AND "createdAt" < now() - make_interval(secs => ${windowMs / 1000}::float8)
      ORDER BY "createdAt" LIMIT ${limit}
    ) AND "placeholder"
    RETURNING "id"`;
  return rows.map((row) => row.id);
}
