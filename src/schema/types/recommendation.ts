import type { UserChanged } from '../../realtime/pubsub.ts';
import type { Recommendation, RecommendationList } from '../../services/recommendations.ts';
import { builder } from '../builder.ts';
import { ItemRef } from './item.ts';

const RecommendationRef = builder.objectRef<Recommendation>('Recommendation').implement({
  fields: (t) => ({
    item: t.field({ type: ItemRef, resolve: (r) => r.item }),
    score: t.exposeFloat('score', { description: 'Higher is better; comparable within one list.' }),
    reason: t.exposeString('reason', { nullable: true }),
  }),
});

const CauseRef = builder.objectRef<UserChanged>('RecommendationCause').implement({
  description: 'The processed event that led to a pushed list.',
  fields: (t) => ({
    eventId: t.exposeID('eventId'),
    receivedAt: t.field({ type: 'DateTime', resolve: (c) => c.receivedAt }),
  }),
});

const RecommendationListRef = builder.objectRef<RecommendationList>('RecommendationList').implement({
  fields: (t) => ({
    recommendationId: t.exposeID('recommendationId', {
      description: 'Send it back as EventInput.recommendationId on interactions with these items.',
    }),
    userId: t.exposeID('userId'),
    items: t.field({ type: [RecommendationRef], resolve: (list) => list.items }),
    strategy: t.exposeString('strategy', { description: '`als` (the learned model) or `trending`.' }),
    modelVersion: t.exposeInt('modelVersion', {
      nullable: true,
      description: 'The model version behind an `als` list.',
    }),
    generatedAt: t.field({ type: 'DateTime', resolve: (list) => list.generatedAt }),
    causedBy: t.field({ type: CauseRef, nullable: true, resolve: (list) => list.causedBy }),
  }),
});

builder.queryFields((t) => ({
  recommendations: t.field({
    type: RecommendationListRef,
    description: 'Products ranked for the shopper (1 ≤ k ≤ 100).',
    args: { userId: t.arg.id({ required: true }), k: t.arg.int({ defaultValue: 10, required: true }) },
    resolve: (_root, { userId, k }, { services }) => services.recommendations.recommend(String(userId), k),
  }),
}));

builder.queryFields((t) => ({
  similarItems: t.field({
    type: [RecommendationRef],
    description: 'Shoppers who liked this item also liked these (by the current model; empty without one).',
    args: { itemId: t.arg.id({ required: true }), k: t.arg.int({ defaultValue: 10, required: true }) },
    resolve: (_root, { itemId, k }, { services }) => services.recommendations.similar(String(itemId), k),
  }),
}));

builder.subscriptionFields((t) => ({
  recommendationsUpdated: t.field({
    type: RecommendationListRef,
    description: 'The shopper’s list now, then a fresh one after each processed event of theirs.',
    args: { userId: t.arg.id({ required: true }), k: t.arg.int({ defaultValue: 10, required: true }) },
    subscribe: (_root, { userId, k }, { services }) => services.recommendations.watch(String(userId), k),
    resolve: (list) => list,
  }),
}));
