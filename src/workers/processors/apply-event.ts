import { type Job, UnrecoverableError } from 'bullmq';
import type { Db } from '../../db/client.ts';
import { findEventForProcessing, markEventProcessed } from '../../db/events.ts';
import type { PubSub } from '../../realtime/pubsub.ts';
import type { FeatureStore } from '../../services/features.ts';
import type { EventJob } from '../queues.ts';

/**
 * Applies one stored event to the online features, records it as processed and tells the gateways that the
 * shopper changed. Idempotent: a redelivered job finds the event applied and only repeats the harmless steps.
 */
export function makeApplyEventProcessor(deps: { db: Db; features: FeatureStore; pubsub: PubSub }) {
  return async (job: Job<EventJob>): Promise<void> => {
    const event = await findEventForProcessing(deps.db, job.data.eventId);
    if (!event) throw new UnrecoverableError(`event ${job.data.eventId} is not stored`);
    if (!event.processedAt) {
      await deps.features.apply(event);
      await markEventProcessed(deps.db, event);
    }
    await deps.pubsub.publishUserChanged({
      userId: event.userId,
      eventId: event.eventId,
      receivedAt: event.receivedAt.toISOString(),
    });
  };
}
