import type { Db } from '../db/client.ts';
import { eventIdRange, type LoggedEvent, markEventsProcessed, readEventPage } from '../db/events.ts';
import type { Progress } from '../progress.ts';
import type { FeatureStore } from './features.ts';
import type { ItemAdmission } from './item-admission.ts';

const PAGE_SIZE = 5000;

/**
 * Replays the whole event log into the feature store: clears the derived features first (a replay over kept
 * state would count again every event older than its shopper's applied-id window), applies every event in
 * log order, and last writes the layout marker, so `needsRebuild` stays true until a replay has finished.
 * An event counts for its item as it did live: a processed event when its item has a row now (declared, or a
 * placeholder not pruned since), an unprocessed one after `admission` (which may make its placeholder).
 * The replay job pauses the events queue meanwhile (see `makeReplayProcessor`). `progress` follows it (the
 * share of the log's id range read so far). Returns how many events were read.
 */
export async function rebuildFeatures(
  db: Db,
  features: FeatureStore,
  admission: ItemAdmission,
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
    const unprocessed = page.filter((event) => !event.processedAt);
    await admitUnprocessed(admission, unprocessed);
    await features.applyMany(page);
    afterId = page[page.length - 1]!.id;
    await markEventsProcessed(db, unprocessed);
    count += page.length;
    if (progress && range) progress.update(Math.min(Number(afterId - range.first + 1n), Number.MAX_SAFE_INTEGER));
  }
  await features.markRebuilt();
  return count;
}

/** Unprocessed events never went through a worker's admission: their items get it now. */
async function admitUnprocessed(admission: ItemAdmission, events: LoggedEvent[]): Promise<void> {
  const unknown = events.filter(
    (event): event is LoggedEvent & { itemId: string } => !event.counted && event.itemId !== null,
  );
  if (unknown.length === 0) return;
  const counted = await admission.countable(
    unknown.map((event) => event.itemId),
    { create: true },
  );
  for (const event of unknown) event.counted = counted.has(event.itemId);
}
