import type { Item } from '../../generated/prisma/client.ts';
import type { ItemInput } from '../../services/catalog.ts';
import { checkId } from '../../services/validation.ts';
import { builder } from '../builder.ts';

export const ItemRef = builder.prismaObject('Item', {
  description: 'A product of the shop’s catalogue.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The shop’s own catalogue id.' }),
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    category: t.exposeString('category', { nullable: true }),
    price: t.string({
      nullable: true,
      description: 'Decimal amount as a string (e.g. "12.50"), so no precision is lost.',
      resolve: (item) => item.price?.toFixed(2) ?? null,
    }),
    currency: t.exposeString('currency', { nullable: true }),
    inStock: t.exposeBoolean('inStock'),
    imageUrl: t.exposeString('imageUrl', { nullable: true }),
    attributes: t.expose('attributes', { type: 'JSON' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const ItemInputRef = builder.inputType('ItemInput', {
  description: 'A catalogue entry. Optional fields left out keep their stored value.',
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string({ required: true }),
    description: t.string(),
    category: t.string(),
    price: t.float({ description: 'Amount in `currency`; two decimals are kept.' }),
    currency: t.string({ description: 'ISO 4217 code, e.g. EUR.' }),
    inStock: t.boolean({ description: 'Defaults to true for a new item.' }),
    imageUrl: t.string(),
    attributes: t.field({ type: 'JSON', description: 'Free attributes (brand, colour, …) as a JSON object.' }),
  }),
});

const UpsertItemsResult = builder.objectRef<{ items: Item[] }>('UpsertItemsResult').implement({
  fields: (t) => ({
    upserted: t.int({ description: 'How many items were created or updated.', resolve: ({ items }) => items.length }),
    items: t.field({ type: [ItemRef], description: 'The items as stored.', resolve: ({ items }) => items }),
  }),
});

builder.queryFields((t) => ({
  item: t.prismaField({
    type: 'Item',
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, { id }, { db }) =>
      db.item.findFirst({ ...query, where: { id: checkId('id', String(id)), placeholder: false } }),
  }),
  items: t.prismaConnection({
    type: 'Item',
    cursor: 'id',
    args: {
      category: t.arg.string(),
      inStock: t.arg.boolean(),
    },
    resolve: (query, _root, args, { db }) =>
      db.item.findMany({
        ...query,
        where: {
          placeholder: false,
          ...(args.category != null ? { category: args.category } : {}),
          ...(args.inStock != null ? { inStock: args.inStock } : {}),
        },
        orderBy: { id: 'asc' },
      }),
  }),
}));

builder.mutationFields((t) => ({
  upsertItems: t.field({
    authScopes: { server: true },
    type: UpsertItemsResult,
    description: 'Creates or updates catalogue items (at most MAX_BATCH_SIZE per call).',
    args: { items: t.arg({ type: [ItemInputRef], required: true }) },
    resolve: async (_root, { items }, { services }) => {
      return {
        items: await services.catalog.upsert(items.map((item): ItemInput => ({ ...item, id: String(item.id) }))),
      };
    },
  }),
}));
