import type { Placement } from '../../services/placements.ts';
import { builder } from '../builder.ts';
import { RulesInputRef } from './rules.ts';

const PlacementRef = builder.objectRef<Placement>('Placement').implement({
  description: 'A named rule set; requests name it as `placement` and may add rules of their own.',
  fields: (t) => ({
    id: t.exposeID('id'),
    description: t.exposeString('description', { nullable: true }),
    rules: t.field({ type: 'JSON', description: 'The stored rules (RulesInput as JSON).', resolve: (p) => p.rules }),
    createdAt: t.field({ type: 'DateTime', resolve: (p) => p.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (p) => p.updatedAt }),
  }),
});

builder.queryFields((t) => ({
  placements: t.field({
    type: [PlacementRef],
    description: 'Admin: every placement, by id.',
    authScopes: { admin: true },
    resolve: (_root, _args, { services }) => services.placements.list(),
  }),
}));

builder.mutationFields((t) => ({
  upsertPlacement: t.field({
    type: PlacementRef,
    description:
      'Admin: creates or replaces a placement (id at most 100 characters); subscriptions that name it get fresh lists on every gateway.',
    authScopes: { admin: true },
    args: {
      id: t.arg.id({ required: true }),
      description: t.arg.string(),
      rules: t.arg({ type: RulesInputRef, required: true }),
    },
    resolve: (_root, { id, description, rules }, { services }) =>
      services.placements.upsert(String(id), description ?? null, rules),
  }),
  deletePlacement: t.boolean({
    description: 'Admin: deletes a placement; false when there was none. Its subscriptions keep their own rules.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { services }) => services.placements.delete(String(id)),
  }),
}));
