import type { Db } from './client.ts';

/** The consent these shoppers stated (setConsent, EventInput.consent); those who never did are left out. */
export async function readStatedConsents(db: Db, userIds: readonly string[]): Promise<Map<string, boolean>> {
  if (userIds.length === 0) return new Map();
  const rows = await db.$queryRaw<{ id: string; consent: boolean }[]>`
    SELECT "id", "consent" FROM "User" WHERE "id" = ANY(${userIds}::text[]) AND "consent" IS NOT NULL`;
  return new Map(rows.map((row) => [row.id, row.consent]));
}

/**
 * Records a shopper's consent and returns whether personalisation was allowed before (their stated consent,
 * or `personalByDefault` when they never said). Granting it after it was withheld starts `personalSince`:
 * events received before are never used to personalise.
 */
export async function storeConsent(
  db: Db,
  userId: string,
  consent: boolean,
  personalByDefault: boolean,
): Promise<boolean> {
  const [row] = await db.$queryRaw<{ before: boolean }[]>`
    WITH old AS (SELECT "consent" FROM "User" WHERE "id" = ${userId}),
    written AS (
      INSERT INTO "User" ("id", "consent", "personalSince")
      VALUES (${userId}, ${consent}, CASE WHEN ${consent} AND NOT ${personalByDefault} THEN now() END)
      ON CONFLICT ("id") DO UPDATE SET
        "consent" = EXCLUDED."consent",
        "personalSince" = CASE WHEN EXCLUDED."consent" AND NOT COALESCE("User"."consent", ${personalByDefault})
                               THEN now() ELSE "User"."personalSince" END
      RETURNING 1
    )
    SELECT COALESCE((SELECT "consent" FROM old), ${personalByDefault}) AS "before" FROM written`;
  return row?.before ?? personalByDefault;
}
