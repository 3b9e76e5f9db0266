import { DomainError, ErrorCode } from '../errors.ts';
import type { ApiKeyScope, KeyStore } from './api-keys.ts';

/**
 * Who is calling, as every transport (GraphQL over HTTP and WebSocket, REST) resolves it. `admin` and
 * `server` are the scopes the schema's `authScopes` check; a public caller may only act as `shopperId`.
 */
export interface Caller {
  /** The key used; null in the local default (no key configured) or with ADMIN_TOKEN. */
  keyId: string | null;
  scope: ApiKeyScope | 'OPEN';
  /** May run admin operations (models, keys). */
  admin: boolean;
  /** May act as any shopper, write the catalogue and read profiles (the shop's back end). */
  server: boolean;
  /** The shopper a public caller's shopper token names; null without a token. */
  shopperId: string | null;
}

/**
 * The form of an anonymous shopper id a public caller may use without a shopper token: `anon_` and at least
 * 22 base64url characters (≥ 132 random bits, e.g. `anon_${crypto.randomUUID()}` minus its dashes fits too).
 */
export const ANONYMOUS_ID = /^anon_[A-Za-z0-9_-]{22,128}$/;

/** What a request presented: the `Authorization` value and the shopper token, as sent. */
export interface Credentials {
  authorization: unknown;
  shopperToken: unknown;
}

/**
 * Resolves a request's caller; UNAUTHENTICATED when keys exist and none (or an unknown one) was sent, or when
 * a shopper token was sent that is forged, expired or signed by a key no longer active.
 */
export async function resolveCaller(
  keys: KeyStore,
  isAdminToken: (authorization: unknown) => boolean,
  adminOpen: boolean,
  credentials: Credentials,
): Promise<Caller> {
  const { authorization, shopperToken } = credentials;
  const bearer = typeof authorization === 'string' ? /^Bearer (.+)$/.exec(authorization)?.[1] : undefined;
  const key = bearer === undefined ? undefined : keys.authenticate(bearer);
  let caller: Caller;
  if (key) {
    caller = {
      keyId: key.id,
      scope: key.scope,
      admin: key.scope === 'ADMIN',
      server: key.scope !== 'PUBLIC',
      shopperId: null,
    };
  } else if (!adminOpen && isAdminToken(authorization)) {
    caller = { keyId: null, scope: 'ADMIN', admin: true, server: true, shopperId: null };
  } else if (keys.enforcing) {
    throw new DomainError(
      ErrorCode.UNAUTHENTICATED,
      bearer === undefined ? 'send an API key as "Authorization: Bearer <key>"' : 'unknown or revoked API key',
    );
  } else {
    // The local default: no key configured, everything allowed (admin operations unless ADMIN_TOKEN is set).
    caller = { keyId: null, scope: 'OPEN', admin: adminOpen, server: true, shopperId: null };
  }
  if (typeof shopperToken === 'string' && shopperToken !== '') {
    caller.shopperId = await keys.verifyShopperToken(shopperToken);
  }
  return caller;
}

/**
 * Throws FORBIDDEN unless the caller may act as `userId`: a server or admin caller as anyone, a public one only
 * as the shopper its token names or, without a token, as an anonymous id of the documented form.
 */
export function assertMayActAs(caller: Caller, userId: string): void {
  if (caller.server) return;
  if (caller.shopperId !== null ? userId === caller.shopperId : ANONYMOUS_ID.test(userId)) return;
  throw new DomainError(
    ErrorCode.FORBIDDEN,
    caller.shopperId !== null
      ? 'a public key may only act as the shopper its shopper token names'
      : 'a public key without a shopper token may only act as an anonymous id (anon_ and 22+ base64url characters)',
    { field: 'userId' },
  );
}
