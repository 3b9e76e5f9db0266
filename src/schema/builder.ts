import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { DomainError, ErrorCode } from '../errors.ts';
import type PrismaTypes from '../generated/pothos-types.ts';
import { getDatamodel } from '../generated/pothos-types.ts';
import type { Context } from './context.ts';

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  DefaultFieldNullability: false;
  /** `admin`: models, keys and everything else; `server`: the shop's back end (catalogue, profiles, tokens). */
  AuthScopes: { admin: boolean; server: boolean };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  defaultFieldNullability: false,
  // Scope auth first, so its checks wrap every other plugin's resolvers.
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin],
  scopeAuth: {
    authScopes: ({ caller }) => ({ admin: caller.admin, server: caller.server }),
    unauthorizedError: (_parent, { caller }) =>
      new DomainError(
        ErrorCode.FORBIDDEN,
        caller.scope === 'OPEN'
          ? 'admin operations need "Authorization: Bearer <ADMIN_TOKEN>"'
          : `the ${caller.scope.toLowerCase()} key's scope does not cover this operation`,
      ),
  },
  prisma: {
    // Resolved per request so that building the schema opens no connection.
    client: (ctx) => ctx.db,
    dmmf: getDatamodel(),
    exposeDescriptions: true,
    onUnusedQuery: null,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
