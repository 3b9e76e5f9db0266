import type { EventType } from '../generated/prisma/enums.ts';
import type { Db } from './client.ts';

/** An event as the ingestion path stores it; validated before it gets here. */
export interface NewEvent {
  eventId: string;
  userId: string;
  type: EventType;
  itemId: string | null;
  sessionId: string | null;
  quantity: number;
  /** Decimal as a string, so money never passes through a float. */
  value: string | null;
  occurredAt: Date;
  context: unknown;
  recommendationId: string | null;
}

/** What the feature worker needs of a stored event. */
export interface StoredEvent {
  id: bigint;
  eventId: string;
  userId: string;
  type: EventType;
  itemId: string | null;
  category: string | null;
  occurredAt: Date;
  receivedAt: Date;
  processedAt: Date | null;
}

/**
 * Stores a batch in one statement and returns the eventIds that were new. Shoppers and items the event names
 * but nobody has declared yet get rows too (items as non-recommendable placeholders), in the same statement,
 * so an acknowledged event never points at nothing.
 */
export async function insertEvents(db: Db, events: readonly NewEvent[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const rows = await db.$queryRawUnsafe<{ eventId: string }[]>(
    `WITH input AS (
       SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::numeric[],
                            $8::timestamptz[], $9::jsonb[], $10::text[])
         AS t("eventId", "userId", "type", "itemId", "sessionId", "quantity", "value", "occurredAt", "context",
              "recommendationId")
     ), new_users AS (
       INSERT INTO "User" ("id") SELECT DISTINCT "userId" FROM input ORDER BY 1 ON CONFLICT ("id") DO NOTHING
     ), new_items AS (
       INSERT INTO "Item" ("id", "name", "inStock", "placeholder")
       SELECT DISTINCT "itemId", "itemId", false, true FROM input WHERE "itemId" IS NOT NULL ORDER BY 1
       ON CONFLICT ("id") DO NOTHING
     )
     INSERT INTO "Event" ("eventId", "userId", "type", "itemId", "sessionId", "quantity", "value", "occurredAt",
                          "context", "recommendationId")
     SELECT "eventId", "userId", "type"::"EventType", "itemId", "sessionId", "quantity", "value", "occurredAt",
            "context", "recommendationId"
     FROM input
     ON CONFLICT ("eventId") DO NOTHING
     RETURNING "eventId"`,
    events.map((e) => e.eventId),
    events.map((e) => e.userId),
    events.map((e) => e.type),
    events.map((e) => e.itemId),
    events.map((e) => e.sessionId),
    events.map((e) => e.quantity),
    events.map((e) => e.value),
    events.map((e) => e.occurredAt.toISOString()),
    events.map((e) => (e.context === null || e.context === undefined ? null : JSON.stringify(e.context))),
    events.map((e) => e.recommendationId),
  );
  return new Set(rows.map((row) => row.eventId));
}

export async function findEventsForProcessing(db: Db, eventIds: readonly string[]): Promise<StoredEvent[]> {
  return db.$queryRawUnsafe<StoredEvent[]>(
    `SELECT e."id", e."eventId", e."userId", e."type", e."itemId", i."category", e."occurredAt", e."receivedAt",
            e."processedAt"
     FROM "Event" e LEFT JOIN "Item" i ON i."id" = e."itemId"
     WHERE e."eventId" = ANY($1::text[])
     ORDER BY e."id"`,
    eventIds,
  );
}

/**
 * Records that the events' derived state is applied, and when their shoppers were last seen. Shopper rows are
 * locked in id order so that concurrent batches over the same shoppers cannot deadlock.
 */
export async function markEventsProcessed(
  db: Db,
  events: readonly Pick<StoredEvent, 'eventId' | 'userId' | 'occurredAt'>[],
) {
  if (events.length === 0) return;
  await db.$executeRawUnsafe(
    `WITH processed AS (
       UPDATE "Event" SET "processedAt" = now() WHERE "eventId" = ANY($1::text[]) AND "processedAt" IS NULL
     ), seen AS (
       SELECT "userId", max("at") AS "at" FROM UNNEST($2::text[], $3::timestamptz[]) AS t("userId", "at") GROUP BY 1
     ), locked AS (
       SELECT u."id" FROM "User" u JOIN seen ON seen."userId" = u."id" ORDER BY u."id" FOR UPDATE OF u
     )
     UPDATE "User" u SET "lastSeenAt" = seen."at"
     FROM seen JOIN locked ON locked."id" = seen."userId"
     WHERE u."id" = seen."userId" AND u."lastSeenAt" < seen."at"`,
    events.map((e) => e.eventId),
    events.map((e) => e.userId),
    events.map((e) => e.occurredAt.toISOString()),
  );
}

/** Events stored but not processed for longer than normal delivery takes: the outbox sweep re-queues them. */
export async function findUnprocessedEventIds(db: Db, receivedBefore: Date, limit: number): Promise<string[]> {
  const rows = await db.$queryRaw<{ eventId: string }[]>`
    SELECT "eventId" FROM "Event"
    WHERE "processedAt" IS NULL AND "receivedAt" < ${receivedBefore}
    ORDER BY "id" LIMIT ${limit}`;
  return rows.map((row) => row.eventId);
}

/** One page of the event log in storage order, for rebuilding derived state. */
export async function readEventPage(db: Db, afterId: bigint, limit: number): Promise<StoredEvent[]> {
  return db.$queryRaw<StoredEvent[]>`
    SELECT e."id", e."eventId", e."userId", e."type", e."itemId", i."category", e."occurredAt", e."receivedAt",
           e."processedAt"
    FROM "Event" e LEFT JOIN "Item" i ON i."id" = e."itemId"
    WHERE e."id" > ${afterId}
    ORDER BY e."id" LIMIT ${limit}`;
}

export async function markEventsProcessedThrough(db: Db, lastId: bigint): Promise<void> {
  await db.$executeRaw`UPDATE "Event" SET "processedAt" = now() WHERE "id" <= ${lastId} AND "processedAt" IS NULL`;
}
