import type { UserChanged } from '../../realtime/pubsub.ts';
import { assertMayActAs } from '../../services/access.ts';
import type { ListChange } from '../../services/list-changes.ts';
import type {
  AppliedRule,
  Explanation,
  ItemSource,
  Preview,
  PreviewCandidate,
  Recommendation,
  RecommendationList,
  RemovalRule,
  TrendingProduct,
} from '../../services/recommendations.ts';
import type { FilterClause, RuleOrigin } from '../../services/rules.ts';
import { builder } from '../builder.ts';
import { ExperimentAssignmentRef } from './experiment.ts';
import { ItemRef } from './item.ts';
import { RulesInputRef } from './rules.ts';

const ItemSourceRef = builder.enumType('RecommendationSource', {
  description: 'Where an item on a list came from.',
  values: {
    LEARNED: {
      description:
        'The learned model: the shopper’s vector against the item vectors (ANN), or for an item-to-item model their recent history times its neighbour table (anchorItem: the history item that contributed most).',
    },
    CO_VISITED: { description: 'Touched in the same sessions as an item of the shopper’s history (anchorItem).' },
    SIMILAR: { description: 'Nearest by the model’s item vectors to anchorItem.' },
    TRENDING: { description: 'Shop-wide trending (time-decayed interactions).' },
    CATALOGUE: { description: 'The filtered catalogue, when the other sources had too few.' },
    PINNED: { description: 'Pinned at its position by a rule.' },
  } as const satisfies Record<ItemSource, { description: string }>,
});

const RuleOriginRef = builder.enumType('RuleOrigin', {
  values: {
    PLACEMENT: { description: 'The placement the request named.' },
    REQUEST: { description: 'The request’s own rules.' },
  } as const satisfies Record<RuleOrigin, { description: string }>,
});

const AppliedRuleKindRef = builder.enumType('AppliedRuleKind', {
  values: { BOOST: {}, PIN: {} } as const satisfies Record<AppliedRule['kind'], object>,
});

const AppliedRuleRef = builder.objectRef<AppliedRule>('AppliedRule').implement({
  description: 'A boost or pin that moved an item: `boosts[index]` or `pins[index]` of its origin.',
  fields: (t) => ({
    kind: t.field({ type: AppliedRuleKindRef, resolve: (r) => r.kind }),
    origin: t.field({ type: RuleOriginRef, resolve: (r) => r.origin }),
    index: t.exposeInt('index'),
    factor: t.exposeFloat('factor', { nullable: true }),
    position: t.exposeInt('position', { nullable: true }),
  }),
});

const ExplanationRef = builder.objectRef<Explanation>('RecommendationExplanation').implement({
  fields: (t) => ({
    source: t.field({ type: ItemSourceRef, resolve: (e) => e.source }),
    anchorItem: t.field({
      type: ItemRef,
      nullable: true,
      description: 'The item of the shopper’s history (or the viewed item) that led to it: “because you viewed X”.',
      resolve: (e) => e.anchorItem,
    }),
    rules: t.field({ type: [AppliedRuleRef], resolve: (e) => e.rules }),
    modelVersion: t.exposeInt('modelVersion', { nullable: true }),
  }),
});

const RecommendationRef = builder.objectRef<Recommendation>('Recommendation').implement({
  fields: (t) => ({
    item: t.field({ type: ItemRef, resolve: (r) => r.item }),
    score: t.exposeFloat('score', {
      description: 'The source’s own score (see explanation.source): comparable among items of one source.',
    }),
    reason: t.exposeString('reason', {
      nullable: true,
      description: 'explanation.source in lower case (learned, co-visited, similar, trending, catalogue, pinned).',
    }),
    explanation: t.field({ type: ExplanationRef, resolve: (r) => r.explanation }),
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
    PLACEMENT: { description: 'The placement the subscription names was changed or deleted.' },
    PRIVACY: {
      description: 'The shopper was erased or withdrew consent: the list no longer draws on anything of theirs.',
    },
    FEATURES: {
      description:
        'A rebuild of the online features ended: trending and co-visitation, which lists fell back from meanwhile, are whole again.',
    },
    EXPERIMENT: { description: 'An experiment covering the list started, changed phase or stopped.' },
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
    experiment: t.field({
      type: ExperimentAssignmentRef,
      nullable: true,
      description: 'The experiment variant that produced the list; null outside any experiment.',
      resolve: (list) => list.experiment,
    }),
    items: t.field({ type: [RecommendationRef], resolve: (list) => list.items }),
    strategy: t.exposeString('strategy', {
      description:
        '`als` (the learned vector model), `item-to-item` (the learned item-to-item model: the shopper’s recent history times its neighbour table), `co-visited` (items touched in the same sessions as the shopper’s latest) or `trending`.',
    }),
    modelVersion: t.exposeInt('modelVersion', {
      nullable: true,
      description: 'The model version behind an `als` or `item-to-item` list.',
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
    description: 'Products ranked for the shopper (1 ≤ k ≤ 100), under a placement’s and the request’s rules.',
    args: {
      userId: t.arg.id({ required: true }),
      k: t.arg.int({ defaultValue: 10, required: true }),
      placement: t.arg.id({ description: 'A placement whose rules apply, merged with `rules` (see the README).' }),
      rules: t.arg({ type: RulesInputRef }),
    },
    resolve: async (_root, { userId, k, placement, rules }, { services, caller }) => {
      assertMayActAs(caller, String(userId));
      const list = await services.recommendations.recommend(services.ids.internal('userId', String(userId)), k, {
        placement: idOrNull(placement),
        rules,
      });
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
    description:
      'Shoppers who liked this item also liked these: nearest by the current model, then co-visited (related items only, no trending or catalogue fill).',
    args: {
      itemId: t.arg.id({ required: true }),
      k: t.arg.int({ defaultValue: 10, required: true }),
      placement: t.arg.id({ description: 'A placement whose rules apply, merged with `rules`.' }),
      rules: t.arg({ type: RulesInputRef }),
    },
    resolve: (_root, { itemId, k, placement, rules }, { services }) =>
      services.recommendations.similar(String(itemId), k, { placement: idOrNull(placement), rules }),
  }),
}));

builder.subscriptionFields((t) => ({
  recommendationsUpdated: t.field({
    type: RecommendationListRef,
    description:
      'The shopper’s list now, then a fresh one whenever it changes: after their events, catalogue changes that touch it, or a new model. Unchanged lists are not pushed.',
    args: {
      userId: t.arg.id({ required: true }),
      k: t.arg.int({ defaultValue: 10, required: true }),
      placement: t.arg.id({ description: 'A placement whose rules apply; changing it pushes a fresh list.' }),
      rules: t.arg({ type: RulesInputRef }),
    },
    subscribe: (_root, { userId, k, placement, rules }, { services, caller }) => {
      assertMayActAs(caller, String(userId));
      return services.recommendations.watch(services.ids.internal('userId', String(userId)), k, {
        placement: idOrNull(placement),
        rules,
      });
    },
    resolve: (list, { userId }) => ({ ...list, userId: String(userId) }),
  }),
}));

const RemovalRuleRef = builder.enumType('RemovalRule', {
  description: 'The rule that kept a candidate off a previewed list.',
  values: {
    FILTER: { description: 'It fails the filter (see clause).' },
    EXCLUDE_PURCHASED: { description: 'The shopper bought it.' },
    EXCLUDE_SEEN: { description: 'The shopper touched it within excludeSeenWithinHours.' },
    MAX_PER_CATEGORY: { description: 'Its category is at maxPerCategory on the list.' },
    BELOW_CUT: { description: 'It passes every rule; the list was full with better candidates.' },
    NOT_IN_CATALOGUE: { description: 'A source or pin named an item the catalogue does not have.' },
  } as const satisfies Record<RemovalRule, { description: string }>,
});

const FilterClauseRef = builder.enumType('FilterClause', {
  values: {
    categories: {},
    excludeCategories: {},
    priceMin: {},
    priceMax: {},
    inStock: {},
    itemIds: {},
    excludeItemIds: {},
    attributes: {},
  } as const satisfies Record<FilterClause, object>,
});

const PreviewCandidateRef = builder.objectRef<PreviewCandidate>('RemovedCandidate').implement({
  description: 'A candidate a source offered (or a pin named) that is not on the previewed list.',
  fields: (t) => ({
    item: t.field({ type: ItemRef, resolve: (c) => c.item }),
    source: t.field({ type: ItemSourceRef, resolve: (c) => c.source }),
    score: t.exposeFloat('score', { description: 'The source’s raw score (0 for a pin).' }),
    boosts: t.field({
      type: [AppliedRuleRef],
      description: 'Boosts whose filter it passes.',
      resolve: (c) => c.boosts,
    }),
    removedBy: t.field({ type: RemovalRuleRef, resolve: (c) => c.removedBy }),
    clause: t.field({ type: FilterClauseRef, nullable: true, resolve: (c) => c.clause }),
  }),
});

const PreviewRef = builder.objectRef<Preview>('RecommendationPreview').implement({
  fields: (t) => ({
    list: t.field({ type: RecommendationListRef, resolve: (p) => p.list }),
    removed: t.field({ type: [PreviewCandidateRef], resolve: (p) => p.removed }),
  }),
});

builder.queryFields((t) => ({
  previewRecommendations: t.field({
    type: PreviewRef,
    description:
      'Admin: a dry run of `recommendations`: the list, and the candidates (up to max(k, 20) per source, before the filter) that did not make it, each with its source, raw score, boosts and the rule that removed it.',
    authScopes: { admin: true },
    args: {
      userId: t.arg.id({ required: true }),
      k: t.arg.int({ defaultValue: 10, required: true }),
      placement: t.arg.id(),
      rules: t.arg({ type: RulesInputRef }),
    },
    resolve: (_root, { userId, k, placement, rules }, { services }) =>
      services.recommendations.preview(services.ids.internal('userId', String(userId)), k, {
        placement: idOrNull(placement),
        rules,
      }),
  }),
}));

function idOrNull(id: string | number | null | undefined): string | null {
  return id == null ? null : String(id);
}
