import type { Db } from '../db/client.ts';
import { eventIdRange, markEventsProcessed, readEventPage } from '../db/events.ts';
import type { Progress } from '../progress.ts';
import type { FeatureStore } from './features.ts';

const PAGE_SIZE = 5000;

/**
 * Replays the whole event log into the feature store: clears the derived features first (a replay over kept
 * state would count again every event older than its shopper's applied-id window), applies every event in
 * log order, and last writes the layout marker, so `needsRebuild` stays true until a replay has finished.
 * The replay job pauses the events queue meanwhile (see `makeReplayProcessor`). `progress` follows it (the
 * share of the log's id range read so far). Returns how many events were read.
 */
export async function rebuildFeatures(
  db: Db,
  features: FeatureStore,
  options: { progress?: Progress } = {},
): Promise<number> {
  await features.clear();
  const { progress } = options;
  const range = await eventIdRange(db);
  // Ids are dense enough (one sequence) that their range is a fair total, without a count over the table.
  if (progress && range) progress.total = Number(range.last - range.first + 1n);
  let afterId = 0n;
  let count = 0;
  for (;;) {
    const page = await readEventPage(db, afterId, PAGE_SIZE, features.personalByDefault);
    if (page.length === 0) break;
    await features.applyMany(page);
    afterId = page[page.length - 1]!.id;
    await markEventsProcessed(
      db,
      page.filter((event) => !event.processedAt),
    );
    count += page.length;
    if (progress && range) progress.update(Math.min(Number(afterId - range.first + 1n), Number.MAX_SAFE_INTEGER));
  }
  await features.markRebuilt();
  return count;
}
