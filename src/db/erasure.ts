import type { Erasure, ErasureKind, Prisma } from '../generated/prisma/client.ts';
import type { Db } from './client.ts';

/**
 * The lock erasures and the trainer's last step take (transaction-level), so a model version stored while a
 * shopper is being erased cannot keep their vector: whichever comes second sees the other's rows.
 */
const ERASURE_LOCK = 7_260_514;

/** What one erasure removed from Postgres, and when (Postgres's clock, which also stamps `receivedAt`). */
export interface ErasedRows {
  logId: bigint;
  erasedAt: Date;
  events: number;
  profiles: number;
  modelVectors: number;
}

/**
 * Removes a shopper's rows in one transaction and logs it under `subject`: for an erasure their events (the
 * log, attribution included) and their shopper row, and in any case their user vector in every stored model
 * artifact (the id and its row of factors, cut out in place). Events first: a feature worker recording some
 * of them as processed at the same moment holds their row locks, so the shopper row it may insert is
 * committed, and deleted here, before this transaction goes on.
 */
export async function eraseShopperRows(
  db: Db,
  userId: string,
  subject: string,
  options: { kind: ErasureKind },
): Promise<ErasedRows> {
  // A withdrawal of consent keeps the log (it still counts toward trending) and the shopper row (it holds the
  // withdrawal); an erasure takes both.
  const erase = options.kind === 'ERASURE';
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ERASURE_LOCK})`;
    const events = erase ? await tx.$executeRaw`DELETE FROM "Event" WHERE "userId" = ${userId}` : 0;
    const profiles = erase ? await tx.$executeRaw`DELETE FROM "User" WHERE "id" = ${userId}` : 0;
    // What experiments kept of them: the lists they were served (their attributed events went with the log).
    if (erase) await tx.$executeRaw`DELETE FROM "ExperimentExposure" WHERE "userId" = ${userId}`;
    const modelVectors = await removeArtifactUser(tx, userId);
    const log = await tx.erasure.create({
      data: { subject, kind: options.kind, events, profiles, modelVectors },
      select: { id: true, erasedAt: true },
    });
    return { logId: log.id, erasedAt: log.erasedAt, events, profiles, modelVectors };
  });
}

/** Adds what the erasure removed outside Postgres to its log entry. */
export async function completeErasureLog(
  db: Db,
  logId: bigint,
  counts: { onlineKeys: number; queuedEvents: number },
): Promise<void> {
  await db.erasure.update({ where: { id: logId }, data: counts });
}

/**
 * Cuts the shopper out of every model artifact that holds them: their id from `userIds` and their row of
 * `factors` float32s from `userFactors` (same position). Returns how many artifacts held them.
 */
async function removeArtifactUser(tx: Prisma.TransactionClient, userId: string): Promise<number> {
  let removed = 0;
  // An id appears once per artifact; the loop only guards against a malformed one holding it twice.
  for (let round = 0; round < 16; round++) {
    const updated = await tx.$executeRaw`
      WITH hit AS (
        SELECT "versionId", array_position("userIds", ${userId}) AS p, "factors" * 4 AS width
        FROM "ModelArtifact" WHERE ${userId} = ANY("userIds")
      )
      UPDATE "ModelArtifact" a SET
        "userIds" = a."userIds"[1:hit.p - 1] || a."userIds"[hit.p + 1:],
        "userFactors" = substring(a."userFactors" FROM 1 FOR (hit.p - 1) * hit.width)
                        || substring(a."userFactors" FROM hit.p * hit.width + 1)
      FROM hit WHERE a."versionId" = hit."versionId"`;
    if (updated === 0) break;
    removed += updated;
  }
  return removed;
}

/** The latest erasure of this subject (`eraseShopper`, not a consent withdrawal), if any. */
export async function findLatestErasure(db: Db, subject: string): Promise<Erasure | null> {
  return db.erasure.findFirst({ where: { subject, kind: 'ERASURE' }, orderBy: { erasedAt: 'desc' } });
}

/** Deletes events by their log ids: those of an erased shopper that reached Postgres as the erasure ran. */
export async function deleteEventsById(db: Db, ids: readonly bigint[]): Promise<number> {
  if (ids.length === 0) return 0;
  return db.$executeRaw`DELETE FROM "Event" WHERE "id" = ANY(${ids.map(String)}::bigint[])`;
}

/**
 * For a model version just stored from a log read that began at `since`: cuts out the shoppers whose data was
 * removed meanwhile (erased or consent withdrawn). `subjectOf` maps the artifact's ids to erasure subjects;
 * it is asked only when there were removals. Returns how many shoppers were cut out.
 */
export async function forgetRemovedSince(
  db: Db,
  versionId: number,
  since: Date,
  subjectOf: (userId: string) => string,
): Promise<number> {
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ERASURE_LOCK})`;
    const removals = await tx.erasure.findMany({ where: { erasedAt: { gte: since } }, select: { subject: true } });
    if (removals.length === 0) return 0;
    const subjects = new Set(removals.map(({ subject }) => subject));
    const artifact = await tx.modelArtifact.findUnique({ where: { versionId }, select: { userIds: true } });
    const removed = (artifact?.userIds ?? []).filter((userId) => subjects.has(subjectOf(userId)));
    for (const userId of removed) await removeArtifactUser(tx, userId);
    return removed.length;
  });
}

/** Postgres's clock now (the one that stamps `erasedAt` and `receivedAt`). */
export async function databaseNow(db: Db): Promise<Date> {
  const [row] = await db.$queryRaw<{ now: Date }[]>`SELECT now() AS "now"`;
  return row?.now ?? new Date();
}
