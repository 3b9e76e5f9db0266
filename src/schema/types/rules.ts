import { MAX_BOOSTS, MAX_PINS } from '../../services/rules.ts';
import { builder } from '../builder.ts';

export const ItemFilterInputRef = builder.inputType('ItemFilterInput', {
  description: 'Hard constraints: every returned item satisfies all of them. Left out: no constraint.',
  fields: (t) => ({
    categories: t.stringList({ description: 'Only items of one of these categories.' }),
    excludeCategories: t.stringList({ description: 'No item of these categories.' }),
    priceMin: t.float({ description: 'Only priced items at or above this price.' }),
    priceMax: t.float({ description: 'Only priced items at or below this price.' }),
    inStock: t.boolean({ description: 'True (the default): in-stock items only; false lifts the stock requirement.' }),
    itemIds: t.idList({ description: 'Only these items.' }),
    excludeItemIds: t.idList({ description: 'Never these items (the item on the page, the cart).' }),
    attributes: t.field({
      type: 'JSON',
      description: 'Equality on the item’s attributes, an object of strings, numbers and booleans: {"brand":"acme"}.',
    }),
  }),
});

const BoostInputRef = builder.inputType('BoostInput', {
  description: 'Multiplies the relevance of the candidates that pass `filter` by `factor` (< 1 buries them).',
  fields: (t) => ({
    filter: t.field({ type: ItemFilterInputRef, required: true }),
    factor: t.float({ required: true, description: 'Finite and above 0.' }),
  }),
});

const PinInputRef = builder.inputType('PinInput', {
  description: 'Puts the item at this 1-based position when it passes the filter and the exclusions.',
  fields: (t) => ({
    itemId: t.id({ required: true }),
    position: t.int({ required: true, description: 'From 1 to k; one pin per position.' }),
  }),
});

export const RulesInputRef = builder.inputType('RulesInput', {
  description: 'Merchandising rules of one request or one placement (see the README, "Rules").',
  fields: (t) => ({
    filter: t.field({ type: ItemFilterInputRef }),
    boosts: t.field({
      type: [BoostInputRef],
      description: `At most ${MAX_BOOSTS}; factors of matching boosts multiply.`,
    }),
    pins: t.field({ type: [PinInputRef], description: `At most ${MAX_PINS}.` }),
    maxPerCategory: t.int({ description: 'At most this many items of one category (pins count, and are never cut).' }),
    diversity: t.float({ description: '0 = pure relevance … 1 = most diverse (MMR over the model’s item vectors).' }),
    excludeSeenWithinHours: t.int({ description: 'Drop items the shopper touched (any event) within this window.' }),
    excludePurchased: t.boolean({ description: 'Drop items the shopper bought. Default true.' }),
  }),
});
