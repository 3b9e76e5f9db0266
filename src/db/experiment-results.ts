import { Prisma } from '../generated/prisma/client.ts';
import type { Db } from './client.ts';

/**
 * How long after a click on a recommended item an add-to-cart or purchase of that item counts as the list's
 * conversion, when the event itself carries no recommendationId.
 */
export const ATTRIBUTION_WINDOW_HOURS = 24;

/** One variant's totals over a phase, per shopper where it says so. */
export interface VariantTotals {
  variant: string;
  /** Distinct shoppers exposed: served a list, or sending an event with one of its recommendationIds. */
  shoppers: number;
  lists: number;
  clicks: number;
  /** Shoppers with at least one attributed click, add-to-cart, purchase. */
  clickers: number;
  carters: number;
  buyers: number;
  /** Attributed purchase value (Event.value) summed over shoppers, and the sum of per-shopper squares. */
  revenue: number;
  revenueSquares: number;
}

/** Shoppers first exposed, and first buying, in one time bucket. */
export interface BucketCounts {
  variant: string;
  bucket: Date;
  exposed: number;
  converted: number;
}

/**
 * Per shopper of a phase: their variant, first exposure, lists, clicks, and attributed conversions. An
 * add-to-cart or purchase is attributed when it carries the variant's recommendationId, or follows an
 * attributed click on the same item by the same shopper within ATTRIBUTION_WINDOW_HOURS (read from the
 * Event table through its (userId, occurredAt) index); each event counts once.
 */
function perShopper(experimentId: string, phase: number): Prisma.Sql {
  return Prisma.sql`
    WITH att AS (
      SELECT "eventId", "experimentVariant" AS variant, "userId", type, "itemId", value, "occurredAt"
        FROM "Event" WHERE "experimentId" = ${experimentId} AND "experimentPhase" = ${phase}
    ), exposed AS (
      SELECT variant, "userId", min(at) AS at, sum(lists) AS lists FROM (
        SELECT variant, "userId", "firstServedAt" AS at, "lists"
          FROM "ExperimentExposure" WHERE "experimentId" = ${experimentId} AND "phase" = ${phase}
        UNION ALL
        SELECT variant, "userId", min("occurredAt"), 0 FROM att GROUP BY 1, 2
      ) u GROUP BY 1, 2
    ), clicks AS (
      SELECT variant, "userId", "itemId", "occurredAt" FROM att WHERE type = 'CLICK'
    ), conversions AS (
      SELECT DISTINCT ON ("eventId") "eventId", variant, "userId", type, value, "occurredAt" FROM (
        SELECT "eventId", variant, "userId", type, value, "occurredAt", 0 AS preference
          FROM att WHERE type IN ('ADD_TO_CART', 'PURCHASE')
        UNION ALL
        SELECT e."eventId", c.variant, e."userId", e.type, e.value, e."occurredAt", 1
          FROM clicks c JOIN "Event" e
            ON e."userId" = c."userId" AND e."itemId" = c."itemId" AND e.type IN ('ADD_TO_CART', 'PURCHASE')
           AND e."occurredAt" >= c."occurredAt"
           AND e."occurredAt" <= c."occurredAt" + make_interval(hours => ${ATTRIBUTION_WINDOW_HOURS})
      ) candidates ORDER BY "eventId", preference
    ), shoppers AS (
      SELECT x.variant, x."userId", x.at, x.lists, coalesce(k.clicks, 0) AS clicks,
             coalesce(v.carted, false) AS carted, coalesce(v.bought, false) AS bought,
             coalesce(v.revenue, 0) AS revenue, v.first_purchase
        FROM exposed x
        LEFT JOIN (SELECT variant, "userId", count(*) AS clicks FROM clicks GROUP BY 1, 2) k USING (variant, "userId")
        LEFT JOIN (
          SELECT variant, "userId",
                 bool_or(type = 'ADD_TO_CART' OR type = 'PURCHASE') AS carted,
                 bool_or(type = 'PURCHASE') AS bought,
                 sum(coalesce(value, 0)) FILTER (WHERE type = 'PURCHASE') AS revenue,
                 min("occurredAt") FILTER (WHERE type = 'PURCHASE') AS first_purchase
            FROM conversions GROUP BY 1, 2
        ) v USING (variant, "userId")
    )`;
}

/** Each variant's totals over a phase (variants nobody saw are absent). */
export async function variantTotals(db: Db, experimentId: string, phase: number): Promise<VariantTotals[]> {
  const rows = await db.$queryRaw<
    {
      variant: string;
      shoppers: number;
      lists: number;
      clicks: number;
      clickers: number;
      carters: number;
      buyers: number;
      revenue: number;
      revenue_squares: number;
    }[]
  >`${perShopper(experimentId, phase)}
    SELECT variant, count(*)::int AS shoppers, sum(lists)::int AS lists, sum(clicks)::int AS clicks,
           count(*) FILTER (WHERE clicks > 0)::int AS clickers,
           count(*) FILTER (WHERE carted)::int AS carters,
           count(*) FILTER (WHERE bought)::int AS buyers,
           sum(revenue)::float8 AS revenue, sum(revenue * revenue)::float8 AS revenue_squares
      FROM shoppers GROUP BY variant`;
  return rows.map((row) => ({
    variant: row.variant,
    shoppers: row.shoppers,
    lists: row.lists,
    clicks: row.clicks,
    clickers: row.clickers,
    carters: row.carters,
    buyers: row.buyers,
    revenue: row.revenue,
    revenueSquares: row.revenue_squares,
  }));
}

/** New exposed and newly buying shoppers per variant and time bucket of `bucketSeconds` from `origin`. */
export async function bucketCounts(
  db: Db,
  experimentId: string,
  phase: number,
  origin: Date,
  bucketSeconds: number,
): Promise<BucketCounts[]> {
  const width = Prisma.sql`make_interval(secs => ${bucketSeconds})`;
  const rows = await db.$queryRaw<{ variant: string; bucket: Date; exposed: number; converted: number }[]>`${perShopper(
    experimentId,
    phase,
  )}, events AS (
      SELECT variant, date_bin(${width}, at, ${origin}) AS bucket, 1 AS exposed, 0 AS converted FROM shoppers
      UNION ALL
      SELECT variant, date_bin(${width}, first_purchase, ${origin}), 0, 1 FROM shoppers WHERE first_purchase IS NOT NULL
    )
    SELECT variant, bucket, sum(exposed)::int AS exposed, sum(converted)::int AS converted
      FROM events GROUP BY 1, 2 ORDER BY 2`;
  return rows;
}
