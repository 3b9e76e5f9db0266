import type { Redis } from 'ioredis';
import type { Config } from '../../src/config.ts';
import type { Db } from '../../src/db/client.ts';
import { rebuildFeatures } from '../../src/services/feature-rebuild.ts';
import { FeatureStore, type ShopperFeatures } from '../../src/services/features.ts';
import { ItemAdmission } from '../../src/services/item-admission.ts';

/**
 * Largest difference allowed between two trending scores of one item (log2 of the decayed sum). Both stores sum
 * the same terms, but the live one in arrival order and the replay in log order, and floating-point sums
 * depend on order in their last bits: 1e-9 in log2 is a relative difference of 7e-10, far below one event's
 * contribution (a view of the oldest item adds more than 1e-6 here).
 */
const TRENDING_TOLERANCE = 1e-9;

/** How the live features compare with a fresh replay of the whole log. */
export interface FeatureComparison {
  matches: boolean;
  shoppers: number;
  /** (shopper, item) history weights compared; each pair is one event of the load. */
  pairs: number;
  /** Pairs whose weight is a whole multiple (> 1) of the replay's: the event counted that many times too often. */
  doubleApplied: number;
  /** Pairs the replay has and the live features lack or hold less of: an event whose effect is lost. */
  lostEffects: number;
  /** Other differences: a pair only the live features hold, a touch time, a category, a purchase. */
  otherDifferences: number;
  trendingItems: number;
  trendingDifferences: number;
  maxTrendingDelta: number;
  /** A few differences, for the report. */
  examples: string[];
}

const same = (a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>) =>
  a.size === b.size && [...a].every(([key, value]) => b.get(key) === value);

/**
 * Replays the event log into a second prefix of the same Redis (`<prefix>-replay`, cleared first) and
 * compares it with the live features key by key: every shopper's history weights, last touches, category
 * weights and purchases exactly, and trending within floating-point summation order. Co-visitation is not
 * compared: which pairs a touch counts depends on the order the worker applies a shopper's events in.
 */
export async function compareWithReplay(
  db: Db,
  redis: Redis,
  config: Config,
  userIds: readonly string[],
): Promise<FeatureComparison> {
  const live = FeatureStore.fromConfig(redis, config);
  const replay = FeatureStore.fromConfig(redis, { ...config, REDIS_PREFIX: `${config.REDIS_PREFIX}-replay` });
  await rebuildFeatures(db, replay, new ItemAdmission({ db, maxPlaceholders: config.MAX_PLACEHOLDER_ITEMS }));
  const result: FeatureComparison = {
    matches: true,
    shoppers: userIds.length,
    pairs: 0,
    doubleApplied: 0,
    lostEffects: 0,
    otherDifferences: 0,
    trendingItems: 0,
    trendingDifferences: 0,
    maxTrendingDelta: 0,
    examples: [],
  };
  const note = (text: string) => {
    result.matches = false;
    if (result.examples.length < 10) result.examples.push(text);
  };
  for (let start = 0; start < userIds.length; start += 500) {
    const chunk = userIds.slice(start, start + 500);
    const [mine, truth] = await Promise.all([live.shopperFeatures(chunk), replay.shopperFeatures(chunk)]);
    for (const userId of chunk) {
      const got = mine.get(userId) as ShopperFeatures;
      const want = truth.get(userId) as ShopperFeatures;
      for (const [itemId, weight] of want.weights) {
        result.pairs++;
        const seen = got.weights.get(itemId) ?? 0;
        if (seen === weight) continue;
        if (seen > weight && Number.isInteger(seen / weight)) {
          result.doubleApplied += seen / weight - 1;
          note(`${userId} ${itemId}: weight ${seen}, replay ${weight} (applied ${seen / weight}×)`);
        } else if (seen < weight) {
          result.lostEffects++;
          note(`${userId} ${itemId}: weight ${seen}, replay ${weight} (effect lost)`);
        } else {
          result.otherDifferences++;
          note(`${userId} ${itemId}: weight ${seen}, replay ${weight}`);
        }
      }
      for (const itemId of got.weights.keys()) {
        if (!want.weights.has(itemId)) {
          result.otherDifferences++;
          note(`${userId} ${itemId}: in the live history only`);
        }
      }
      for (const part of ['lastTouched', 'categories', 'bought'] as const) {
        if (!same(got[part], want[part])) {
          result.otherDifferences++;
          note(`${userId}: ${part} differ`);
        }
      }
    }
  }
  const [liveTrending, replayTrending] = await Promise.all([live.trending(1_000_000), replay.trending(1_000_000)]);
  const liveScores = new Map(liveTrending.map((entry) => [entry.itemId, entry.logScore]));
  result.trendingItems = replayTrending.length;
  if (liveTrending.length !== replayTrending.length) {
    result.trendingDifferences++;
    note(`trending: ${liveTrending.length} items live, ${replayTrending.length} replayed`);
  }
  for (const { itemId, logScore } of replayTrending) {
    const seen = liveScores.get(itemId);
    const delta = seen === undefined ? Number.POSITIVE_INFINITY : Math.abs(seen - logScore);
    result.maxTrendingDelta = Math.max(result.maxTrendingDelta, delta);
    if (delta > TRENDING_TOLERANCE) {
      result.trendingDifferences++;
      note(`trending ${itemId}: ${seen ?? 'absent'} live, ${logScore} replayed`);
    }
  }
  await replay.clear();
  return result;
}
