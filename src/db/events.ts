import type pg from 'pg';
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
  /**
   * The list id the event carried, on the processing path only (the worker attributes it to an experiment's
   * variant, see markEventsProcessed); absent where nothing attributes (history reads, replays).
   */
  recommendationId?: string | null;
  /**
   * False when the shopper's consent did not cover this event (read from the log with their consent): it
   * counts toward trending only. Unset on the live path, where the worker's Redis state decides.
   */
  personal?: boolean;
}

/**
 * A stored event as a rebuild reads it back from the log: `counted` says whether its item may shape shop-wide
 * and shopper features (it has an Item row, declared or placeholder; see ItemAdmission), or it names no item.
 */
export interface LoggedEvent extends StoredEvent {
  counted: boolean;
}

/** What Postgres assigned to a newly stored event. */
export interface StoredRow {
  /** The log's sequence number. */
  id: bigint;
  receivedAt: Date;
}

/** The event insert of the acknowledgement path. */
const INSERT_EVENTS = `INSERT INTO "Event" ("eventId", "userId", "type", "itemId", "sessionId", "quantity", "value", "occurredAt",
                          "context", "recommendationId")
     SELECT "eventId", "userId", "type"::"EventType", "itemId", "sessionId", "quantity", "value", "occurredAt",
            "context", "recommendationId"
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::numeric[],
                 $8::timestamptz[], $9::jsonb[], $10::text[])
       AS t("eventId", "userId", "type", "itemId", "sessionId", "quantity", "value", "occurredAt", "context",
            "recommendationId")
     ON CONFLICT ("eventId") DO NOTHING
     RETURNING "id", "eventId", "receivedAt"`;

/**
 * Stores a batch in one statement and returns the eventIds that were new, with their sequence number and the
 * time Postgres received each. This is the acknowledgement path, so it writes the event log only; the shopper and
 * placeholder-item rows an event implies, and its experiment attribution, are written by the feature worker
 * (markEventsProcessed).
 */
export async function insertEvents(pool: pg.Pool, events: readonly NewEvent[]): Promise<Map<string, StoredRow>> {
  if (events.length === 0) return new Map();
  const values = [
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
  ];
  // A named statement: each pooled connection parses and plans it once, not on every acknowledgement.
  const { rows } = await pool.query<{ id: string; eventId: string; receivedAt: Date }>({
    name: 'insert-events',
    text: INSERT_EVENTS,
    values,
  });
  // pg returns bigint columns as decimal strings.
  return new Map(rows.map((row) => [row.eventId, { id: BigInt(row.id), receivedAt: row.receivedAt }]));
}

/** What a stored event says, to tell a retry (DUPLICATE) from a different event under a known eventId (CONFLICT). */
export type StoredPayload = Omit<NewEvent, 'value'> & { value: string | null };

/** The stored payloads of these eventIds, in one statement; only asked when a batch had duplicates. */
export async function findEventPayloads(
  pool: pg.Pool,
  eventIds: readonly string[],
): Promise<Map<string, StoredPayload>> {
  const { rows } = await pool.query<StoredPayload>({
    name: 'find-event-payloads',
    text: `SELECT "eventId", "userId", "type", "itemId", "sessionId", "quantity", "value"::text AS "value", "occurredAt",
                  "context", "recommendationId"
           FROM "Event" WHERE "eventId" = ANY($1::text[])`,
    values: [eventIds],
  });
  return new Map(rows.map((row) => [row.eventId, row]));
}

export async function findEventsForProcessing(db: Db, eventIds: readonly string[]): Promise<StoredEvent[]> {
  return db.$queryRawUnsafe<StoredEvent[]>(
    `SELECT e."id", e."eventId", e."userId", e."type", e."itemId", i."category", e."occurredAt", e."receivedAt",
            e."processedAt", e."recommendationId"
     FROM "Event" e LEFT JOIN "Item" i ON i."id" = e."itemId"
     WHERE e."eventId" = ANY($1::text[])
     ORDER BY e."id"`,
    eventIds,
  );
}

/** The experiment variant an event's recommendationId was verified to name (EventAttributor). */
export interface EventOrigin {
  experimentId: string;
  phase: number;
  variant: string;
}

/**
 * Records that the events' derived state is applied, in one statement with what they imply: their experiment
 * attribution (`origin`, three columns of the event's own row, so exactly as durable as the event; one
 * attributed before keeps its own) and their shoppers' rows (first and last seen). Placeholder items were made
 * before the events applied (ItemAdmission). Rows are written in id order so that concurrent batches over the
 * same shoppers do not deadlock.
 * A shopper row comes only from events this statement marked: an event deleted by an erasure (before, or
 * while this statement waited for its row lock) brings no row back; nor does one their consent does not
 * cover (`personal` false): a shopper without consent gets no row, unless they stated it (setConsent).
 */
export async function markEventsProcessed(
  db: Db,
  events: readonly (Pick<StoredEvent, 'eventId' | 'userId' | 'occurredAt' | 'personal'> & {
    origin?: EventOrigin | null;
  })[],
) {
  if (events.length === 0) return;
  await db.$executeRawUnsafe(
    `WITH t AS (
       SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::boolean[], $5::text[], $6::int[], $7::text[])
         AS t("eventId", "userId", "at", "personal", "experimentId", "phase", "variant")
     ), processed AS (
       UPDATE "Event" e SET "processedAt" = now(),
              "experimentId" = COALESCE(e."experimentId", t."experimentId"),
              "experimentPhase" = COALESCE(e."experimentPhase", t."phase"),
              "experimentVariant" = COALESCE(e."experimentVariant", t."variant")
         FROM t WHERE e."eventId" = t."eventId" AND e."processedAt" IS NULL
       RETURNING e."eventId"
     )
     INSERT INTO "User" ("id", "firstSeenAt", "lastSeenAt")
     SELECT "userId", min("at"), max("at")
     FROM t JOIN processed USING ("eventId")
     WHERE t."personal"
     GROUP BY 1 ORDER BY 1
     ON CONFLICT ("id") DO UPDATE SET
       "firstSeenAt" = LEAST("User"."firstSeenAt", EXCLUDED."firstSeenAt"),
       "lastSeenAt" = GREATEST("User"."lastSeenAt", EXCLUDED."lastSeenAt")`,
    events.map((e) => e.eventId),
    events.map((e) => e.userId),
    events.map((e) => e.occurredAt.toISOString()),
    events.map((e) => e.personal !== false),
    events.map((e) => e.origin?.experimentId ?? null),
    events.map((e) => e.origin?.phase ?? null),
    events.map((e) => e.origin?.variant ?? null),
  );
}

/**
 * Marks unprocessed again the events recorded processed at or after `since` (Redis lost their effects, or may
 * have), so the outbox sweep queues them once more; returns how many. Bounded by time: seconds of events.
 */
export async function markEventsUnprocessedSince(db: Db, since: Date): Promise<number> {
  return db.$executeRaw`UPDATE "Event" SET "processedAt" = NULL WHERE "processedAt" >= ${since}`;
}

/** Events stored but not processed for longer than normal delivery takes: the outbox sweep re-queues them. */
export async function findUnprocessedEventIds(db: Db, receivedBefore: Date, limit: number): Promise<string[]> {
  const rows = await db.$queryRaw<{ eventId: string }[]>`
    SELECT "eventId" FROM "Event"
    WHERE "processedAt" IS NULL AND "receivedAt" < ${receivedBefore}
    ORDER BY "id" LIMIT ${limit}`;
  return rows.map((row) => row.eventId);
}

/**
 * The newest `perShopper` processed events of each shopper, in log order, to rebuild the state of shoppers
 * whose online features expired. Unprocessed events are left out: their own jobs (or the sweep) apply them in
 * full, and a restore must not mark them applied first.
 */
export async function readShopperHistories(
  db: Db,
  userIds: readonly string[],
  perShopper: number,
): Promise<LoggedEvent[]> {
  if (userIds.length === 0) return [];
  // Only what their consent covers: nothing received before they last granted it after withholding it.
  return db.$queryRaw<LoggedEvent[]>`
    SELECT h.* FROM UNNEST(${userIds}::text[]) AS s("userId")
    LEFT JOIN "User" u ON u."id" = s."userId"
    CROSS JOIN LATERAL (
      SELECT e."id", e."eventId", e."userId", e."type", e."itemId", i."category", e."occurredAt", e."receivedAt",
             e."processedAt", (e."itemId" IS NULL OR i."id" IS NOT NULL) AS "counted"
      FROM "Event" e LEFT JOIN "Item" i ON i."id" = e."itemId"
      WHERE e."userId" = s."userId" AND e."processedAt" IS NOT NULL
        AND (u."personalSince" IS NULL OR e."receivedAt" >= u."personalSince")
      ORDER BY e."occurredAt" DESC LIMIT ${perShopper}
    ) h
    ORDER BY h."id"`;
}

/**
 * One page of the event log in storage order, for rebuilding derived state, each event with whether its
 * shopper's consent covers it (`personal`): their stated consent, or `personalByDefault` (CONSENT_DEFAULT)
 * when they never said, and not received before they last granted it after withholding it.
 */
export async function readEventPage(
  db: Db,
  afterId: bigint,
  limit: number,
  personalByDefault: boolean,
): Promise<(LoggedEvent & { personal: boolean })[]> {
  return db.$queryRaw<(LoggedEvent & { personal: boolean })[]>`
    SELECT e."id", e."eventId", e."userId", e."type", e."itemId", i."category", e."occurredAt", e."receivedAt",
           e."processedAt", (e."itemId" IS NULL OR i."id" IS NOT NULL) AS "counted",
           (COALESCE(u."consent", ${personalByDefault}) AND (u."personalSince" IS NULL OR e."receivedAt" >= u."personalSince")) AS "personal"
    FROM "Event" e LEFT JOIN "Item" i ON i."id" = e."itemId" LEFT JOIN "User" u ON u."id" = e."userId"
    WHERE e."id" > ${afterId}
    ORDER BY e."id" LIMIT ${limit}`;
}

/** The first and last id of the event log, or undefined when it is empty (both ends are index reads). */
export async function eventIdRange(db: Db): Promise<{ first: bigint; last: bigint } | undefined> {
  const [row] = await db.$queryRaw<{ first: bigint | null; last: bigint | null }[]>`
    SELECT min("id") AS "first", max("id") AS "last" FROM "Event"`;
  return row?.first != null && row.last != null ? { first: row.first, last: row.last } : undefined;
}

/** The newest `limit` events that name an item (primary-key order, one index read), for a bounded ranking. */
export async function readRecentItemEvents(
  db: Db,
  limit: number,
): Promise<Pick<StoredEvent, 'itemId' | 'type' | 'occurredAt'>[]> {
  return db.$queryRaw<Pick<StoredEvent, 'itemId' | 'type' | 'occurredAt'>[]>`
    SELECT "itemId", "type", "occurredAt" FROM "Event"
    WHERE "itemId" IS NOT NULL
    ORDER BY "id" DESC LIMIT ${limit}`;
}

/** A shopper's newest `limit` distinct purchased items, from the log (their index on userId, occurredAt). */
export async function readBoughtItems(db: Db, userId: string, limit: number): Promise<string[]> {
  const rows = await db.$queryRaw<{ itemId: string }[]>`
    SELECT "itemId" FROM (
      SELECT "itemId", max("occurredAt") AS "at" FROM "Event"
      WHERE "userId" = ${userId} AND "type" = 'PURCHASE' AND "itemId" IS NOT NULL
      GROUP BY "itemId"
    ) bought
    ORDER BY "at" DESC LIMIT ${limit}`;
  return rows.map((row) => row.itemId);
}
