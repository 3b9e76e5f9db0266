import type { Db } from '../db/client.ts';
import { ATTRIBUTION_WINDOW_HOURS, bucketCounts, variantTotals } from '../db/experiment-results.ts';
import { DomainError, ErrorCode, InvalidInputError } from '../errors.ts';
import {
  type Difference,
  momentsOf,
  proportionInterval,
  type SampleRatio,
  sampleRatio,
  twoProportion,
  welch,
} from '../model/ab-stats.ts';
import type { Experiment, ExperimentService } from './experiments.ts';

/** Points of the cumulative-conversion series at most (the bucket width follows from the phase's length). */
const MAX_POINTS = 48;
/** The narrowest bucket, so a phase a few minutes old still plots a handful of points. */
const MIN_BUCKET_SECONDS = 60;

/** A variant's differences from the control (the first variant); null for the control itself. */
export interface VersusControl {
  clickRate: Difference | null;
  addToCartRate: Difference | null;
  purchaseRate: Difference | null;
  revenuePerShopper: Difference | null;
}

export interface VariantResult {
  name: string;
  weight: number;
  control: boolean;
  /** Distinct shoppers exposed in the phase (the unit of every per-shopper rate). */
  shoppers: number;
  lists: number;
  clicks: number;
  /** Clicks per served list (descriptive: lists of one shopper are not independent, so no test on it). */
  clickThroughRate: number;
  /** Shares of shoppers with an attributed click, add-to-cart, purchase. */
  clickRate: number;
  addToCartRate: number;
  purchaseRate: number;
  revenue: number;
  revenuePerShopper: number;
  /** The assigned share the weights expect, and the share observed (for the sample-ratio check). */
  expectedShare: number;
  observedShare: number;
  versusControl: VersusControl | null;
}

/** One point of a variant's cumulative purchase conversion, with its 95 % interval. */
export interface SeriesPoint {
  at: Date;
  shoppers: number;
  buyers: number;
  rate: number;
  low: number;
  high: number;
}

export interface ExperimentResults {
  experiment: Experiment;
  phase: number;
  /** Where the phase's data starts and (for a finished phase or a stopped experiment) ends. */
  from: Date;
  to: Date | null;
  attributionWindowHours: number;
  variants: VariantResult[];
  srm: SampleRatio;
  series: { variant: string; points: SeriesPoint[] }[];
}

/**
 * Reads an experiment's phase from the impression log and the attributed events (Postgres only: nothing to
 * lose with Redis) and compares each variant with the control, the first variant: two-proportion z-tests for
 * the per-shopper rates, Welch's t-test for revenue per shopper, and the sample-ratio-mismatch check of the
 * exposed shoppers against the weights.
 */
export async function experimentResults(
  db: Db,
  experiments: ExperimentService,
  id: string,
  phase?: number | null,
): Promise<ExperimentResults> {
  const experiment = await experiments.get(id);
  if (!experiment)
    throw new DomainError(ErrorCode.NOT_FOUND, `id: no experiment ${id}`, { field: 'id', rule: 'exists' });
  const wanted = phase ?? experiment.phase;
  if (!Number.isInteger(wanted) || wanted < 1 || wanted > experiment.phase) {
    throw new InvalidInputError('phase', 'range', `must be an integer from 1 to ${experiment.phase}`);
  }
  const history = await experiments.history(id);
  const began = history.find((change) => change.phase === wanted && change.kind !== 'STOPPED');
  const ended = history.find(
    (change) => change.phase > wanted || (change.phase === wanted && change.kind === 'STOPPED'),
  );
  const from = began?.at ?? experiment.phaseStartedAt;
  const to = ended?.at ?? null;
  const variants = began?.variants ?? experiment.variants;
  const [totals, series] = await Promise.all([
    variantTotals(db, id, wanted),
    seriesOf(
      db,
      id,
      wanted,
      from,
      to,
      variants.map((variant) => variant.name),
    ),
  ]);
  const byName = new Map(totals.map((row) => [row.variant, row]));
  const counts = variants.map((variant) => {
    const row = byName.get(variant.name);
    return {
      variant,
      shoppers: row?.shoppers ?? 0,
      lists: row?.lists ?? 0,
      clicks: row?.clicks ?? 0,
      clickers: row?.clickers ?? 0,
      carters: row?.carters ?? 0,
      buyers: row?.buyers ?? 0,
      revenue: row?.revenue ?? 0,
      revenueSquares: row?.revenueSquares ?? 0,
    };
  });
  const totalShoppers = counts.reduce((sum, count) => sum + count.shoppers, 0);
  const totalWeight = variants.reduce((sum, variant) => sum + variant.weight, 0);
  const control = counts[0];
  const rate = (x: number, n: number) => (n > 0 ? x / n : 0);
  return {
    experiment,
    phase: wanted,
    from,
    to,
    attributionWindowHours: ATTRIBUTION_WINDOW_HOURS,
    srm: sampleRatio(
      counts.map((count) => count.shoppers),
      variants.map((variant) => variant.weight),
    ),
    series,
    variants: counts.map((count, index) => ({
      name: count.variant.name,
      weight: count.variant.weight,
      control: index === 0,
      shoppers: count.shoppers,
      lists: count.lists,
      clicks: count.clicks,
      clickThroughRate: rate(count.clicks, count.lists),
      clickRate: rate(count.clickers, count.shoppers),
      addToCartRate: rate(count.carters, count.shoppers),
      purchaseRate: rate(count.buyers, count.shoppers),
      revenue: count.revenue,
      revenuePerShopper: rate(count.revenue, count.shoppers),
      expectedShare: totalWeight > 0 ? count.variant.weight / totalWeight : 0,
      observedShare: rate(count.shoppers, totalShoppers),
      versusControl:
        index === 0 || !control
          ? null
          : {
              clickRate: twoProportion(control.clickers, control.shoppers, count.clickers, count.shoppers),
              addToCartRate: twoProportion(control.carters, control.shoppers, count.carters, count.shoppers),
              purchaseRate: twoProportion(control.buyers, control.shoppers, count.buyers, count.shoppers),
              revenuePerShopper: welch(
                momentsOf(control.shoppers, control.revenue, control.revenueSquares),
                momentsOf(count.shoppers, count.revenue, count.revenueSquares),
              ),
            },
    })),
  };
}

/** Cumulative purchase conversion per variant at the end of each bucket, with its 95 % interval. */
async function seriesOf(
  db: Db,
  id: string,
  phase: number,
  from: Date,
  to: Date | null,
  names: readonly string[],
): Promise<{ variant: string; points: SeriesPoint[] }[]> {
  const span = Math.max(0, (to ?? new Date()).getTime() - from.getTime()) / 1000;
  const bucketSeconds = Math.max(MIN_BUCKET_SECONDS, Math.ceil(span / MAX_POINTS));
  const rows = await bucketCounts(db, id, phase, from, bucketSeconds);
  return names.map((variant) => {
    let shoppers = 0;
    let buyers = 0;
    const points: SeriesPoint[] = [];
    for (const row of rows) {
      if (row.variant !== variant) continue;
      shoppers += row.exposed;
      buyers += row.converted;
      const interval = proportionInterval(buyers, shoppers);
      points.push({ at: new Date(row.bucket.getTime() + bucketSeconds * 1000), shoppers, buyers, ...interval });
    }
    return { variant, points };
  });
}
