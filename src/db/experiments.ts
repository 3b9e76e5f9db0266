import type pg from 'pg';
import type { NewEvent } from './events.ts';

/** An event attributed to an experiment's variant. */
export type AttributedEvent = NewEvent & {
  experimentId: string;
  phase: number;
  variant: string;
  recommendationId: string;
};

/** Inserts attributed events in one statement; an eventId attributed before is skipped (retries, rebuilds). */
export async function insertExperimentEvents(pool: pg.Pool, rows: readonly AttributedEvent[]): Promise<void> {
  await pool.query(
    `INSERT INTO "ExperimentEvent"
       ("eventId", "experimentId", "phase", "variant", "userId", "type", "itemId", "value", "occurredAt", "recommendationId")
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::"EventType"[], $7::text[],
                          $8::numeric[], $9::timestamptz[], $10::text[])
     ON CONFLICT ("eventId") DO NOTHING`,
    [
      rows.map((row) => row.eventId),
      rows.map((row) => row.experimentId),
      rows.map((row) => row.phase),
      rows.map((row) => row.variant),
      rows.map((row) => row.userId),
      rows.map((row) => row.type),
      rows.map((row) => row.itemId),
      rows.map((row) => row.value),
      rows.map((row) => row.occurredAt),
      rows.map((row) => row.recommendationId),
    ],
  );
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
