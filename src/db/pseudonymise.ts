import type { Db } from './client.ts';

/** Shopper ids rewritten per transaction. */
const PAGE = 1000;
/** The form of a pseudonym (`ShopperIds#pseudonym`), as a Postgres regular expression. */
const PSEUDONYM_SQL = '^p_[A-Za-z0-9_-]{43}$';

/** What a rewrite changed. */
export interface PseudonymisedCounts {
  shoppers: number;
  events: number;
  artifacts: number;
}

/**
 * Rewrites every stored shopper id that is not a pseudonym yet into its pseudonym, for a database that ran
 * without USER_ID_KEY before: the event log, the shopper rows and the user ids of every stored model artifact
 * (their factor rows stay in place). Pages of shoppers, one transaction each; run again, it changes only what
 * is left. Meant for a stopped deployment (no gateway or worker writing meanwhile).
 */
export async function pseudonymiseStoredIds(
  db: Db,
  pseudonym: (userId: string) => string,
  onPage: (counts: PseudonymisedCounts) => void = () => undefined,
): Promise<PseudonymisedCounts> {
  const counts: PseudonymisedCounts = { shoppers: 0, events: 0, artifacts: 0 };
  for (;;) {
    const rows = await db.$queryRaw<{ id: string }[]>`
      SELECT "id" FROM (
        (SELECT DISTINCT "userId" AS "id" FROM "Event" WHERE "userId" !~ ${PSEUDONYM_SQL} ORDER BY 1 LIMIT ${PAGE})
        UNION
        (SELECT "id" FROM "User" WHERE "id" !~ ${PSEUDONYM_SQL} ORDER BY 1 LIMIT ${PAGE})
      ) s ORDER BY 1 LIMIT ${PAGE}`;
    if (rows.length === 0) break;
    const from = rows.map(({ id }) => id);
    const to = from.map(pseudonym);
    const [events] = await db.$transaction([
      db.$executeRaw`
        UPDATE "Event" e SET "userId" = m."to" FROM UNNEST(${from}::text[], ${to}::text[]) AS m("from", "to")
        WHERE e."userId" = m."from"`,
      db.$executeRaw`
        UPDATE "User" u SET "id" = m."to" FROM UNNEST(${from}::text[], ${to}::text[]) AS m("from", "to")
        WHERE u."id" = m."from"`,
    ]);
    counts.shoppers += from.length;
    counts.events += events;
    onPage(counts);
  }
  const artifacts = await db.modelArtifact.findMany({ select: { versionId: true, userIds: true } });
  const pattern = new RegExp(PSEUDONYM_SQL);
  for (const { versionId, userIds } of artifacts) {
    if (userIds.every((id) => pattern.test(id))) continue;
    await db.modelArtifact.update({
      where: { versionId },
      data: { userIds: userIds.map((id) => (pattern.test(id) ? id : pseudonym(id))) },
    });
    counts.artifacts++;
  }
  return counts;
}
