import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Db } from '../../db/client.ts';
import { readStatedConsents } from '../../db/consent.ts';
import { deleteEventsById } from '../../db/erasure.ts';
import { findEventsForProcessing, readShopperHistories, type StoredEvent } from '../../db/events.ts';
import type { Logger } from '../../logger.ts';
import type { PubSub } from '../../realtime/pubsub.ts';
import type { EventAttributor } from '../../services/experiment-ids.ts';
import type { FeatureEvent, FeatureStore } from '../../services/features.ts';
import type { ItemAdmission } from '../../services/item-admission.ts';
import type { ShopperVectors } from '../../services/shopper-vectors.ts';
import type { ProcessedMarker } from '../processed-marker.ts';
import type { EventJob, QueuedEvent } from '../queues.ts';

/**
 * How many of a shopper's newest events rebuild their state when it expired: enough to fill the kept windows
 * (500 history items, 500 purchases) for nearly every shopper, while bounding the read.
 */
export const RESTORED_EVENTS_PER_SHOPPER = 2000;

/**
 * Applies stored events to the online features, folds the shoppers' vectors in against the current model,
 * tells the gateways which shoppers changed (once per shopper, naming their latest event), and then records
 * the events as processed, with the experiment variant each one's recommendationId names. Idempotent: on a redelivery the shoppers' applied-id windows and processedAt make
 * the repeated steps harmless. A shopper whose state expired (or who is new) gets it rebuilt from their
 * processed events in Postgres before their new events apply; a known shopper costs no Postgres read.
 */
export function makeEventsApplier(deps: {
  db: Db;
  features: FeatureStore;
  /** Decides which items an event may count for (catalogue items and capped placeholders). */
  admission: ItemAdmission;
  vectors: ShopperVectors;
  pubsub: PubSub;
  processed: ProcessedMarker;
  /** Reads the events' recommendationIds: which experiment variant's list each came from, if any. */
  attributor: EventAttributor;
  logger: Logger;
  /** The connection `features` and `pubsub` publish on, for the commands this processor sends together. */
  redis: Redis;
}) {
  /** Applies one batch; `queuedAt` (epoch ms) is when the gateway handed it off, for the debug log. */
  return async (job: EventJob, queuedAt: number): Promise<void> => {
    const started = performance.now();
    // The gateway's batches carry the events; the sweep's carry ids, read back from the log (as are jobs from
    // a gateway that did not send the sequence numbers yet).
    const queued = job.events;
    const events: StoredEvent[] = queued?.every(hasId)
      ? queued.map(fromQueued)
      : await findEventsForProcessing(deps.db, job.eventIds);
    const unprocessed = events.filter((event) => !event.processedAt);
    // Placeholders for unknown items are made (capped) before the events apply, so an event counts for its item
    // exactly when a rebuild would count it.
    const countable = await deps.admission.countable(
      unprocessed.flatMap((event) => (event.itemId === null ? [] : [event.itemId])),
      { create: true },
    );
    let pending: (StoredEvent & FeatureEvent)[] = unprocessed.map((event) => ({
      ...event,
      counted: event.itemId === null || countable.has(event.itemId),
    }));
    const latestByUser = new Map<string, StoredEvent>();
    for (const event of events) latestByUser.set(event.userId, event);
    // Two round trips to Redis in all for known shoppers: apply and read the histories, then store the
    // vectors and announce.
    const { histories, absent, erased, anonymous } = await deps.features.applyAndReadHistories(pending, [
      ...latestByUser.keys(),
    ]);
    if (erased.length) {
      // Stored just as their shopper was erased (or still queued then): they go the way of the rest.
      await deleteEventsById(
        deps.db,
        erased.map(({ id }) => id),
      );
      const dropped = new Set(erased);
      const erasedUsers = new Set(erased.map(({ userId }) => userId));
      pending = pending.filter((event) => !dropped.has(event));
      for (const userId of erasedUsers) {
        latestByUser.delete(userId);
        histories.delete(userId);
      }
    }
    if (absent.size) {
      // Whether their consent covers personalisation is in Postgres (Redis holds nothing of them now).
      const stated = await readStatedConsents(deps.db, [...absent]);
      const withheld = [...absent].filter((userId) => !(stated.get(userId) ?? deps.features.personalByDefault));
      if (withheld.length) {
        // Marked first, so their events (now and until the marker expires) count toward trending only.
        await deps.features.markNotPersonal(withheld);
        for (const userId of withheld) {
          absent.delete(userId);
          anonymous.add(userId);
        }
        await deps.features.applyMany(
          pending.filter((event) => anonymous.has(event.userId)),
          'refuse',
        );
      }
      const userIds = [...absent];
      const earlier = await readShopperHistories(deps.db, userIds, RESTORED_EVENTS_PER_SHOPPER);
      const restored = await deps.features.restoreShoppers(
        earlier,
        pending.filter((event) => absent.has(event.userId)),
        userIds,
      );
      for (const [userId, history] of restored) histories.set(userId, history);
    }
    const applied = performance.now();
    const pipeline = deps.redis.pipeline();
    // Queued before the announcement, so the list a gateway recomputes already ranks with the new vector.
    const refreshed = await deps.vectors.refresh(histories, pipeline);
    const foldedIn = performance.now();
    if (refreshed?.newItemIds.length) {
      await deps.pubsub.publishItemVectorsAdded({ versionId: refreshed.versionId, itemIds: refreshed.newItemIds });
    }
    const processedAt = new Date().toISOString();
    for (const event of latestByUser.values()) {
      await deps.pubsub.publishUserChanged(
        { userId: event.userId, eventId: event.eventId, receivedAt: event.receivedAt.toISOString(), processedAt },
        pipeline,
      );
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
    // Where a job's time goes, for tuning freshness (LOG_LEVEL=debug).
    deps.logger.debug(
      {
        events: events.length,
        restoredShoppers: absent.size,
        queuedMs: Date.now() - queuedAt - (performance.now() - started),
        applyMs: applied - started,
        foldInMs: foldedIn - applied,
        publishMs: performance.now() - foldedIn,
      },
      'events applied',
    );
    // After the announcement: the push needs only Redis, so this commit stays off the freshness path. Should
    // the process die first, the outbox sweep re-queues the events and the applied-id windows skip the features.
    deps.processed.add(
      pending.map((event) => ({
        ...event,
        personal: !anonymous.has(event.userId),
        origin: event.recommendationId ? deps.attributor.originOf(event.recommendationId) : null,
      })),
    );
  };
}

/** The applier as a BullMQ processor, for the events queue (the sweep's and large batches' path). */
export function makeApplyEventsProcessor(deps: Parameters<typeof makeEventsApplier>[0]) {
  const apply = makeEventsApplier(deps);
  return (job: Job<EventJob>): Promise<void> => apply(job.data, job.timestamp);
}

function hasId(event: QueuedEvent): event is QueuedEvent & { id: string } {
  return event.id !== undefined;
}

function fromQueued(event: QueuedEvent & { id: string }): StoredEvent {
  return {
    ...event,
    id: BigInt(event.id),
    occurredAt: new Date(event.occurredAt),
    receivedAt: new Date(event.receivedAt),
    processedAt: null,
    recommendationId: event.recommendationId ?? null,
  };
}
