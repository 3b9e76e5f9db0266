import type { UserChanged } from '../../realtime/pubsub.ts';
import { assertMayActAs } from '../../services/access.ts';
import type { ListChange } from '../../services/list-changes.ts';
import type { Recommendation, RecommendationList, TrendingProduct } from '../../services/recommendations.ts';
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
    processedAt: t.field({
      type: 'DateTime',
      description: 'When the worker had applied the event (features, shopper vector) and announced the change.',
      resolve: (c) => c.processedAt,
    }),
  }),
});

const TriggerRef = builder.enumType('RecommendationTrigger', {
  description: 'What made the gateway push a list.',
  values: {
    SUBSCRIBED: { description: 'The list as it stood when the subscription started.' },
    EVENT: { description: "The shopper's own event was processed (see causedBy)." },
    CATALOG: { description: 'A catalogue change touched the list: price, stock, or a newly recommendable item.' },
    MODEL: { description: 'A new model version started serving.' },
    PRIVACY: {
      description: 'The shopper was erased or withdrew consent: the list no longer draws on anything of theirs.',
    },
  } as const,
});

const ChangeRef = builder.objectRef<ListChange>('RecommendationChange').implement({
  description: 'How a pushed list differs from the previous push on the same subscription.',
  fields: (t) => ({
    trigger: t.field({ type: TriggerRef, resolve: (c) => c.trigger }),
    entered: t.exposeIDList('entered', { description: 'Items that are new on the list, in list order.' }),
    left: t.exposeIDList('left', { description: 'Items that are no longer on the list.' }),
  }),
});

const RecommendationListRef = builder.objectRef<RecommendationList>('RecommendationList').implement({
  fields: (t) => ({
    recommendationId: t.exposeID('recommendationId', {
      description: 'Send it back as EventInput.recommendationId on interactions with these items.',
    }),
    userId: t.exposeID('userId'),
    items: t.field({ type: [RecommendationRef], resolve: (list) => list.items }),
    strategy: t.exposeString('strategy', {
      description:
        '`als` (the learned model), `co-visited` (items touched in the same sessions as the shopper’s latest) or `trending`.',
    }),
    modelVersion: t.exposeInt('modelVersion', {
      nullable: true,
      description: 'The model version behind an `als` list.',
    }),
    generatedAt: t.field({ type: 'DateTime', resolve: (list) => list.generatedAt }),
    causedBy: t.field({ type: CauseRef, nullable: true, resolve: (list) => list.causedBy }),
    change: t.field({
      type: ChangeRef,
      nullable: true,
      description: 'On pushed lists: why it was pushed and what changed. Null on query results.',
      resolve: (list) => list.change,
    }),
  }),
});

builder.queryFields((t) => ({
  recommendations: t.field({
    type: RecommendationListRef,
    description: 'Products ranked for the shopper (1 ≤ k ≤ 100).',
    args: { userId: t.arg.id({ required: true }), k: t.arg.int({ defaultValue: 10, required: true }) },
    resolve: async (_root, { userId, k }, { services, caller }) => {
      assertMayActAs(caller, String(userId));
      const list = await services.recommendations.recommend(services.ids.internal('userId', String(userId)), k);
      // The id the caller sent, not the pseudonym the gateway works with.
      return { ...list, userId: String(userId) };
    },
  }),
}));

const TrendingItemRef = builder.objectRef<TrendingProduct>('TrendingItem').implement({
  description: 'An in-stock item on the shop-wide trending ranking (time-decayed, weighted interactions).',
  fields: (t) => ({
    item: t.field({ type: ItemRef, resolve: (r) => r.item }),
    score: t.exposeFloat('score', { description: 'Relative to the most trending item (1 = the top).' }),
  }),
});

builder.queryFields((t) => ({
  trending: t.field({
    type: [TrendingItemRef],
    description: 'The most trending in-stock items right now, best first (1 ≤ k ≤ 100); empty before any event.',
    args: { k: t.arg.int({ defaultValue: 10, required: true }) },
    resolve: (_root, { k }, { services }) => services.recommendations.trending(k),
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
    description:
      'The shopper’s list now, then a fresh one whenever it changes: after their events, catalogue changes that touch it, or a new model. Unchanged lists are not pushed.',
    args: { userId: t.arg.id({ required: true }), k: t.arg.int({ defaultValue: 10, required: true }) },
    subscribe: (_root, { userId, k }, { services, caller }) => {
      assertMayActAs(caller, String(userId));
      return services.recommendations.watch(services.ids.internal('userId', String(userId)), k);
    },
    resolve: (list, { userId }) => ({ ...list, userId: String(userId) }),
  }),
}));
