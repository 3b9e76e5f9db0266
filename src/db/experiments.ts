import type pg from 'pg';

/** A stored event's attribution, as a rebuild derives it from its recommendationId. */
export interface Attribution {
  eventId: string;
  experimentId: string;
  phase: number;
  variant: string;
}

/**
 * Writes attributions into the events' rows in one statement; an event attributed before keeps its attribution
 * (retries, rebuilds). Returns how many events it attributed.
 */
export async function attributeEvents(pool: pg.Pool, rows: readonly Attribution[]): Promise<number> {
  const result = await pool.query(
    `UPDATE "Event" e
        SET "experimentId" = t."experimentId", "experimentPhase" = t."phase", "experimentVariant" = t."variant"
       FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[]) AS t("eventId", "experimentId", "phase", "variant")
      WHERE e."eventId" = t."eventId" AND e."experimentId" IS NULL`,
    [
      rows.map((row) => row.eventId),
      rows.map((row) => row.experimentId),
      rows.map((row) => row.phase),
      rows.map((row) => row.variant),
    ],
  );
  return result.rowCount ?? 0;
}

/** A shopper's exposure to a variant in a phase, as the impression log keeps it. */
export interface ExposureRow {
  experimentId: string;
  phase: number;
  variant: string;
  userId: string;
  lists: number;
  firstServedAt: Date;
  lastServedAt: Date;
}

/**
 * Adds exposures in one statement: a shopper already logged in the phase gets their lists added and their
 * last time moved (their variant stays the first one logged; a phase assigns each shopper one variant).
 */
export async function upsertExposures(pool: pg.Pool, rows: readonly ExposureRow[]): Promise<void> {
  await pool.query(
    `INSERT INTO "ExperimentExposure" AS e
       ("experimentId", "phase", "variant", "userId", "lists", "firstServedAt", "lastServedAt")
     SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::text[], $5::int[], $6::timestamptz[], $7::timestamptz[])
     ON CONFLICT ("experimentId", "phase", "userId") DO UPDATE SET
       "lists" = e."lists" + excluded."lists",
       "firstServedAt" = least(e."firstServedAt", excluded."firstServedAt"),
       "lastServedAt" = greatest(e."lastServedAt", excluded."lastServedAt")`,
    [
      rows.map((row) => row.experimentId),
      rows.map((row) => row.phase),
      rows.map((row) => row.variant),
      rows.map((row) => row.userId),
      rows.map((row) => row.lists),
      rows.map((row) => row.firstServedAt),
      rows.map((row) => row.lastServedAt),
    ],
  );
}
