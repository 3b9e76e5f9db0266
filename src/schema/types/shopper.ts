import type { Item } from '../../generated/prisma/client.ts';
import type { ShopperProfile } from '../../services/shoppers.ts';
import { builder } from '../builder.ts';
import { ItemRef } from './item.ts';

const CategoryAffinityRef = builder.objectRef<{ category: string; weight: number }>('CategoryAffinity').implement({
  fields: (t) => ({
    category: t.exposeString('category'),
    weight: t.exposeFloat('weight', { description: 'Weighted interactions (view 1, click 2, cart 4, purchase 8).' }),
  }),
});

const ShopperRef = builder.objectRef<ShopperProfile>('Shopper').implement({
  description: 'What the gateway knows of a shopper right now (online features, updated with every event).',
  fields: (t) => ({
    id: t.exposeID('userId'),
    recentItems: t.field({
      type: [ItemRef],
      description: 'Items the shopper touched, newest first (declared catalogue items only).',
      resolve: (profile): Item[] => profile.recentItems,
    }),
    boughtItemIds: t.exposeIDList('boughtItemIds', {
      description: 'The shopper’s newest 500 purchased items, never recommended to them again.',
    }),
    categoryAffinity: t.field({
      type: [CategoryAffinityRef],
      description: 'Categories by weight, strongest first.',
      resolve: (profile) => profile.categoryAffinity,
    }),
  }),
});

builder.queryFields((t) => ({
  shopper: t.field({
    type: ShopperRef,
    description: "Server: a shopper's profile (never readable with a public key).",
    authScopes: { server: true },
    args: { userId: t.arg.id({ required: true }) },
    resolve: async (_root, { userId }, { services }) => ({
      ...(await services.shoppers.profile(services.ids.internal('userId', String(userId)))),
      userId: String(userId),
    }),
  }),
}));
