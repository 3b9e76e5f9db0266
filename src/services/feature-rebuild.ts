import type { Db } from '../db/client.ts';
import { markEventsProcessed, readEventPage } from '../db/events.ts';
import type { FeatureStore } from './features.ts';

const PAGE_SIZE = 5000;

/**
 * Replays the event log into the feature store. Applying is idempotent per event, so a replay over existing
 * state only fills what is missing (after Redis lost data, say); with `fresh` the features are cleared first.
 * Returns how many events were read.
 */
export async function rebuildFeatures(db: Db, features: FeatureStore, options: { fresh?: boolean } = {}) {
  if (options.fresh) await features.clear();
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
  return count;
}
