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

/** An impression as the log stores it. */
export interface ImpressionRow {
  recommendationId: string;
  experimentId: string;
  phase: number;
  variant: string;
  userId: string;
  servedAt: Date;
}

/** Inserts impressions in one statement; a recommendationId logged before is skipped. */
export async function insertImpressions(pool: pg.Pool, rows: readonly ImpressionRow[]): Promise<void> {
  await pool.query(
    `INSERT INTO "ExperimentImpression" ("recommendationId", "experimentId", "phase", "variant", "userId", "servedAt")
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::timestamptz[])
     ON CONFLICT ("recommendationId") DO NOTHING`,
    [
      rows.map((row) => row.recommendationId),
      rows.map((row) => row.experimentId),
      rows.map((row) => row.phase),
      rows.map((row) => row.variant),
      rows.map((row) => row.userId),
      rows.map((row) => row.servedAt),
    ],
  );
}
