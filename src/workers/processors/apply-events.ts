import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Db } from '../../db/client.ts';
import { findEventsForProcessing, type StoredEvent } from '../../db/events.ts';
import type { Logger } from '../../logger.ts';
import type { PubSub } from '../../realtime/pubsub.ts';
import type { FeatureStore } from '../../services/features.ts';
import type { ShopperVectors } from '../../services/shopper-vectors.ts';
import type { ProcessedMarker } from '../processed-marker.ts';
import type { EventJob, QueuedEvent } from '../queues.ts';

type JobEvent = Omit<StoredEvent, 'id'>;

/**
 * Applies stored events to the online features, folds the shoppers' vectors in against the current model,
 * tells the gateways which shoppers changed (once per shopper, naming their latest event), and then records
 * the events as processed. Idempotent: on a redelivery the applied markers and processedAt make the repeated
 * steps harmless.
 */
export function makeApplyEventsProcessor(deps: {
  db: Db;
  features: FeatureStore;
  vectors: ShopperVectors;
  pubsub: PubSub;
  processed: ProcessedMarker;
  logger: Logger;
  /** The connection `features` and `pubsub` publish on, for the commands this processor sends together. */
  redis: Redis;
}) {
  return async (job: Job<EventJob>): Promise<void> => {
    const started = performance.now();
    // The gateway's jobs carry the events; the sweep's carry ids, read back from the log.
    const events: JobEvent[] =
      job.data.events?.map(fromQueued) ?? (await findEventsForProcessing(deps.db, job.data.eventIds));
    const pending = events.filter((event) => !event.processedAt);
    const latestByUser = new Map<string, JobEvent>();
    for (const event of events) latestByUser.set(event.userId, event);
    // Two round trips to Redis in all: apply and read the histories, then store the vectors and announce.
    const histories = await deps.features.applyAndReadHistories(pending, [...latestByUser.keys()]);
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
        queuedMs: Date.now() - job.timestamp - (performance.now() - started),
        applyMs: applied - started,
        foldInMs: foldedIn - applied,
        publishMs: performance.now() - foldedIn,
      },
      'events applied',
    );
    // After the announcement: the push needs only Redis, so this commit stays off the freshness path. Should
    // the process die first, the outbox sweep re-queues the events and the markers skip the features.
    deps.processed.add(pending);
  };
}

function fromQueued(event: QueuedEvent): JobEvent {
  return {
    ...event,
    occurredAt: new Date(event.occurredAt),
    receivedAt: new Date(event.receivedAt),
    processedAt: null,
  };
}
