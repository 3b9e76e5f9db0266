import type { Db } from '../db/client.ts';
import { markEventsProcessed, readEventPage } from '../db/events.ts';
import type { FeatureStore } from './features.ts';

const PAGE_SIZE = 5000;

/**
 * Replays the whole event log into the feature store: clears the derived features first (a replay over kept
 * state would count again every event older than its shopper's applied-id window), applies every event in
 * log order, and last writes the layout marker, so `needsRebuild` stays true until a replay has finished.
 * Events that live workers apply meanwhile are skipped by the replay when they are among their shopper's
 * newest applied ids. Returns how many events were read.
 */
export async function rebuildFeatures(db: Db, features: FeatureStore): Promise<number> {
  await features.clear();
  let afterId = 0n;
  let count = 0;
  for (;;) {
    const page = await readEventPage(db, afterId, PAGE_SIZE);
    if (page.length === 0) break;
    await features.applyMany(page);
    afterId = page[page.length - 1]!.id;
    await markEventsProcessed(
      db,
      page.filter((event) => !event.processedAt),
    );
    count += page.length;
  }
  await features.markRebuilt();
  return count;
}
