import { DomainError, ErrorCode } from '../../errors.ts';
import { type ApiKeyInfo, type ApiKeyScope, MAX_SHOPPER_TOKEN_SECONDS } from '../../services/api-keys.ts';
import { builder } from '../builder.ts';

const ApiKeyScopeRef = builder.enumType('ApiKeyScope', {
  description: 'What a key may do.',
  values: {
    ADMIN: { description: 'Everything: models, keys, and all a server key may do.' },
    SERVER: {
      description: "The shop's back end: events for any shopper, catalogue writes, profiles, shopper tokens.",
    },
    PUBLIC: {
      description:
        'Held by browsers: acts only as the shopper its shopper token names (or an anonymous anon_… id); reads items, trending, similar items.',
    },
  } as const satisfies Record<ApiKeyScope, { description: string }>,
});

const ApiKeyRef = builder.objectRef<ApiKeyInfo>('ApiKey').implement({
  description: 'An API key; its secret is shown only once, by createApiKey.',
  fields: (t) => ({
    id: t.exposeID('id'),
    scope: t.field({ type: ApiKeyScopeRef, resolve: (key) => key.scope }),
    description: t.exposeString('description', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (key) => key.createdAt }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (key) => key.revokedAt }),
  }),
});

const CreatedApiKeyRef = builder.objectRef<{ id: string; secret: string }>('CreatedApiKey').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    secret: t.exposeString('secret', {
      description: 'Send it as "Authorization: Bearer <secret>". Shown only now: the gateway keeps only its hash.',
    }),
  }),
});

builder.queryFields((t) => ({
  apiKeys: t.field({
    type: [ApiKeyRef],
    description: 'Admin: every key, revoked ones too, newest first.',
    authScopes: { admin: true },
    resolve: (_root, _args, { services }) => services.keys.list(),
  }),
}));

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreatedApiKeyRef,
    description: 'Admin: creates a key; from then on every request on every gateway needs a key.',
    authScopes: { admin: true },
    args: { scope: t.arg({ type: ApiKeyScopeRef, required: true }), description: t.arg.string() },
    resolve: (_root, { scope, description }, { services }) => services.keys.create(scope, description ?? null),
  }),
  revokeApiKey: t.boolean({
    description: 'Admin: revokes a key on every gateway within a second; false when no active key has this id.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { services }) => services.keys.revoke(String(id)),
  }),
  createShopperToken: t.string({
    description: `Server: a token (JWT HS256, signed with the calling key) that lets a public key act as this shopper; ttlSeconds 1 to ${MAX_SHOPPER_TOKEN_SECONDS} (default 3600).`,
    authScopes: { server: true },
    args: { userId: t.arg.id({ required: true }), ttlSeconds: t.arg.int() },
    resolve: (_root, { userId, ttlSeconds }, { services, caller }) => {
      if (caller.keyId === null) {
        throw new DomainError(ErrorCode.FORBIDDEN, 'shopper tokens are signed with the calling server key: send one');
      }
      return services.keys.mintShopperToken(caller.keyId, String(userId), ttlSeconds ?? undefined);
    },
  }),
}));
