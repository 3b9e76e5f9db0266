import type { Job } from 'bullmq';
import type { Db } from '../../db/client.ts';
import { findEventsForProcessing, markEventsProcessed, type StoredEvent } from '../../db/events.ts';
import type { PubSub } from '../../realtime/pubsub.ts';
import type { FeatureStore } from '../../services/features.ts';
import type { ShopperVectors } from '../../services/shopper-vectors.ts';
import type { EventJob } from '../queues.ts';

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
}) {
  return async (job: Job<EventJob>): Promise<void> => {
    const events = await findEventsForProcessing(deps.db, job.data.eventIds);
    const pending = events.filter((event) => !event.processedAt);
    await deps.features.applyMany(pending);
    const latestByUser = new Map<string, StoredEvent>();
    for (const event of events) latestByUser.set(event.userId, event);
    // Before the announcement, so the list a gateway recomputes already ranks with the new vector.
    await deps.vectors.refresh([...latestByUser.keys()]);
    await Promise.all(
      [...latestByUser.values()].map((event) =>
        deps.pubsub.publishUserChanged({
          userId: event.userId,
          eventId: event.eventId,
          receivedAt: event.receivedAt.toISOString(),
        }),
      ),
    );
    // After the announcement: the push needs only Redis, so this commit stays off the freshness path. Should
    // the process die in between, the outbox sweep re-queues the events and the markers skip the features.
    await markEventsProcessed(deps.db, pending);
  };
}
