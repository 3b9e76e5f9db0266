import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Db } from '../db/client.ts';
import { DomainError, ErrorCode } from '../errors.ts';
import type { ApiKey } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { PubSub } from '../realtime/pubsub.ts';

/** What a key may do; the values of the schema's `ApiKeyScope`. */
export const ApiKeyScope = { ADMIN: 'ADMIN', SERVER: 'SERVER', PUBLIC: 'PUBLIC' } as const;
export type ApiKeyScope = (typeof ApiKeyScope)[keyof typeof ApiKeyScope];

/** An active key as the gateway keeps it in memory. */
interface ActiveKey {
  id: string;
  scope: ApiKeyScope;
  /** HMAC key that signs and verifies this key's shopper tokens. */
  tokenKey: Uint8Array;
}

/** A key as the admin listing shows it: never its secret. */
export type ApiKeyInfo = Omit<ApiKey, 'secretHash' | 'tokenKey'>;

/** The label the shopper-token key is derived under; a shop's back end derives the same key offline. */
export const SHOPPER_TOKEN_LABEL = 'pgw-shopper-token';
/** Longest a shopper token may live. */
export const MAX_SHOPPER_TOKEN_SECONDS = 7 * 24 * 3600;
const DEFAULT_SHOPPER_TOKEN_SECONDS = 3600;

/**
 * The digest a secret is found by. Plain SHA-256 suffices: secrets carry 256 random bits, so no dictionary or
 * brute force can invert it, and a pepper would only matter for guessable secrets.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** HMAC-SHA256(secret, "pgw-shopper-token"): verifies shopper tokens without being the API secret itself. */
export function shopperTokenKey(secret: string): Buffer {
  return createHmac('sha256', secret).update(SHOPPER_TOKEN_LABEL).digest();
}

/** A new secret: a readable prefix naming its scope, then 32 random bytes in base64url. */
function newSecret(scope: ApiKeyScope): string {
  return `pgw_${scope.toLowerCase()}_${randomBytes(32).toString('base64url')}`;
}

/**
 * The API keys, cached in memory so authenticating a request costs a hash and a map lookup. The set is
 * reloaded when any gateway announces a change (pub/sub) and every `pollMs` besides, so a key created or
 * revoked on one gateway holds on every gateway within a second even if an announcement is lost. As soon as
 * one active key exists, `enforcing` is true and every request needs one.
 */
export class KeyStore {
  readonly #db: Db;
  readonly #pubsub: PubSub;
  readonly #logger: Logger;
  readonly #pollMs: number;
  #byHash = new Map<string, ActiveKey>();
  #byId = new Map<string, ActiveKey>();
  #timer: NodeJS.Timeout | undefined;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(deps: { db: Db; pubsub: PubSub; logger: Logger; pollMs?: number }) {
    this.#db = deps.db;
    this.#pubsub = deps.pubsub;
    this.#logger = deps.logger;
    this.#pollMs = deps.pollMs ?? 1000;
  }

  /** Whether any active key exists: then every request must carry one. */
  get enforcing(): boolean {
    return this.#byHash.size > 0;
  }

  /** Loads the key set (storing `bootstrapAdminKey` first when no active key exists) and keeps it fresh. */
  async start(bootstrapAdminKey = ''): Promise<void> {
    if (bootstrapAdminKey !== '') await this.#bootstrap(bootstrapAdminKey);
    this.#unlisten = await this.#pubsub.onKeysChanged(() => void this.#refreshQuietly());
    await this.refresh();
    this.#timer = setInterval(() => void this.#refreshQuietly(), this.#pollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#unlisten?.();
  }

  /** Reloads the active keys from Postgres. */
  async refresh(): Promise<void> {
    const rows = await this.#db.apiKey.findMany({
      where: { revokedAt: null },
      select: { id: true, scope: true, secretHash: true, tokenKey: true },
    });
    const byHash = new Map<string, ActiveKey>();
    const byId = new Map<string, ActiveKey>();
    for (const row of rows) {
      const key = { id: row.id, scope: row.scope, tokenKey: Buffer.from(row.tokenKey, 'base64url') };
      byHash.set(row.secretHash, key);
      byId.set(row.id, key);
    }
    this.#byHash = byHash;
    this.#byId = byId;
  }

  async #refreshQuietly(): Promise<void> {
    // On a failed reload the last known set stays in force: a Postgres outage neither opens nor closes the gateway.
    await this.refresh().catch((error: unknown) => this.#logger.warn({ err: error }, 'could not reload API keys'));
  }

  async #bootstrap(secret: string): Promise<void> {
    const active = await this.#db.apiKey.count({ where: { revokedAt: null } });
    if (active > 0) return;
    // Gateways starting together insert the same hash; the unique index keeps one.
    await this.#db.apiKey.createMany({
      data: [
        {
          id: randomUUID(),
          scope: ApiKeyScope.ADMIN,
          description: 'BOOTSTRAP_ADMIN_KEY',
          secretHash: hashSecret(secret),
          tokenKey: shopperTokenKey(secret).toString('base64url'),
        },
      ],
      skipDuplicates: true,
    });
    this.#logger.info('stored BOOTSTRAP_ADMIN_KEY as the first admin key');
  }

  /** The active key with this secret, if any. */
  authenticate(secret: string): { id: string; scope: ApiKeyScope } | undefined {
    const key = this.#byHash.get(hashSecret(secret));
    return key && { id: key.id, scope: key.scope };
  }

  /** Creates a key; its secret is returned only here. */
  async create(scope: ApiKeyScope, description: string | null): Promise<{ id: string; secret: string }> {
    const secret = newSecret(scope);
    const id = randomUUID();
    await this.#db.apiKey.create({
      data: {
        id,
        scope,
        description,
        secretHash: hashSecret(secret),
        tokenKey: shopperTokenKey(secret).toString('base64url'),
      },
    });
    await this.#announce();
    return { id, secret };
  }

  /** Revokes a key at once on every gateway; false when no active key has this id. */
  async revoke(id: string): Promise<boolean> {
    const { count } = await this.#db.apiKey.updateMany({
      where: { id, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    await this.#announce();
    return count > 0;
  }

  list(): Promise<ApiKeyInfo[]> {
    return this.#db.apiKey.findMany({
      select: { id: true, scope: true, description: true, createdAt: true, revokedAt: true },
      orderBy: { createdAt: 'desc' },
    });
  }

  async #announce(): Promise<void> {
    await this.refresh();
    await this.#pubsub.publishKeysChanged().catch((error: unknown) => {
      // The other gateways' poll picks the change up within a second anyway.
      this.#logger.warn({ err: error }, 'could not announce an API key change');
    });
  }

  /** Mints a shopper token for `userId`, signed with the key `keyId`'s token key. */
  async mintShopperToken(keyId: string, userId: string, ttlSeconds = DEFAULT_SHOPPER_TOKEN_SECONDS): Promise<string> {
    const key = this.#byId.get(keyId);
    if (!key) throw new DomainError(ErrorCode.UNAUTHENTICATED, 'the key that signs the token is not active');
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_SHOPPER_TOKEN_SECONDS) {
      throw new DomainError(ErrorCode.INVALID_INPUT, `ttlSeconds: must be 1 to ${MAX_SHOPPER_TOKEN_SECONDS}`, {
        field: 'ttlSeconds',
        rule: 'range',
      });
    }
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: keyId })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(key.tokenKey);
  }

  /**
   * The `userId` a shopper token names, when an active server or admin key signed it and it has not expired;
   * otherwise UNAUTHENTICATED.
   */
  async verifyShopperToken(token: string): Promise<string> {
    const refused = (why: string) => new DomainError(ErrorCode.UNAUTHENTICATED, `shopper token refused: ${why}`);
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw refused('malformed');
    }
    const key = kid === undefined ? undefined : this.#byId.get(kid);
    if (!key || key.scope === ApiKeyScope.PUBLIC) throw refused('unknown signing key');
    try {
      const { payload } = await jwtVerify(token, key.tokenKey, {
        algorithms: ['HS256'],
        requiredClaims: ['sub', 'exp'],
      });
      if (typeof payload.sub !== 'string' || payload.sub === '') throw refused('no subject');
      return payload.sub;
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw refused(error instanceof joseErrors.JWTExpired ? 'expired' : 'bad signature or claims');
    }
  }
}
