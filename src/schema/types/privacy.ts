import { assertMayActAs } from '../../services/access.ts';
import type { ErasureReceipt } from '../../services/erasure.ts';
import { builder } from '../builder.ts';

const ErasureReceiptRef = builder.objectRef<ErasureReceipt>('ErasureReceipt').implement({
  description:
    'What an erasure removed, per store. Zeros for an id the gateway never saw. Trending and co-visitation counts ' +
    'stay: they count items, not shoppers.',
  fields: (t) => ({
    erasedAt: t.field({
      type: 'DateTime',
      description: "When it took effect: events of the shopper's received before are gone or dropped.",
      resolve: (receipt) => receipt.erasedAt,
    }),
    events: t.exposeInt('events', { description: 'Events deleted from the event log (with their attribution).' }),
    profiles: t.exposeInt('profiles', { description: 'Shopper rows deleted (0 or 1).' }),
    modelVectors: t.exposeInt('modelVectors', {
      description: 'Stored model versions whose user vectors held the shopper; each lost that row.',
    }),
    onlineKeys: t.exposeInt('onlineKeys', {
      description: 'Redis keys deleted: recent items, purchases, category weights, applied ids, folded-in vectors.',
    }),
    queuedEvents: t.exposeInt('queuedEvents', { description: 'Events taken out of jobs still waiting in the queue.' }),
  }),
});

builder.mutationFields((t) => ({
  eraseShopper: t.field({
    type: ErasureReceiptRef,
    description:
      "Server: erases everything of the shopper's on every gateway and worker (events, profile, online features, " +
      'model vectors, queued events) and logs that it ran, without their id. Later events with this id start a new shopper.',
    authScopes: { server: true },
    args: { userId: t.arg.id({ required: true }) },
    resolve: (_root, { userId }, { services }) =>
      services.erasure.erase(services.ids.internal('userId', String(userId))),
  }),
}));

const ConsentRef = builder.objectRef<{ userId: string; personalization: boolean }>('Consent').implement({
  fields: (t) => ({
    userId: t.exposeID('userId'),
    personalization: t.exposeBoolean('personalization', {
      description: 'Whether the shopper now gets personal lists built from what they do.',
    }),
  }),
});

builder.mutationFields((t) => ({
  setConsent: t.field({
    type: ConsentRef,
    description:
      "Server, or a public key as its token's shopper: records the shopper's consent to personalisation. Without " +
      'it their events count toward trending only and their lists are non-personal; withdrawing it removes what was ' +
      'built of them (profile, history, vectors) on every gateway and worker. Events received while it was withheld ' +
      'are never used to personalise, also after it is granted again.',
    args: { userId: t.arg.id({ required: true }), personalization: t.arg.boolean({ required: true }) },
    resolve: async (_root, { userId, personalization }, { services, caller }) => {
      const id = String(userId);
      assertMayActAs(caller, id);
      await services.consent.set(services.ids.internal('userId', id), personalization);
      return { userId: id, personalization };
    },
  }),
}));

builder.queryFields((t) => ({
  erasure: t.field({
    type: ErasureReceiptRef,
    nullable: true,
    description: 'Server: the latest erasure of this shopper id, or null when none ran.',
    authScopes: { server: true },
    args: { userId: t.arg.id({ required: true }) },
    resolve: (_root, { userId }, { services }) =>
      services.erasure.lastErasure(services.ids.internal('userId', String(userId))),
  }),
}));
