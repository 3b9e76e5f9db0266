import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The prefix of an experiment list's recommendationId (the token's format version). */
const PREFIX = 'x1';
/** Base64url characters of the list's random part (72 bits: ids never repeat in practice). */
const NONCE_BYTES = 9;
/** Base64url characters of the truncated HMAC-SHA256 (128 bits). */
const MAC_CHARS = 22;
/** Domain label of the key derived from USER_ID_KEY when RECOMMENDATION_ID_KEY is empty. */
const DERIVED_LABEL = 'pgw-recommendation-id';
/** The key without either secret: tokens are then tamper-evident only against someone who has not read this. */
const DEVELOPMENT_KEY = 'pgw-development-recommendation-id-key';

/** Experiment ids and variant names: what fits between the token's dots and in a metric label. */
export const EXPERIMENT_ID = /^[A-Za-z0-9_-]{1,40}$/;
export const VARIANT_NAME = /^[A-Za-z0-9_-]{1,32}$/;
/** A list outside any experiment keeps the random UUID it always had. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What an experiment list's recommendationId says about the list. */
export interface ListOrigin {
  experimentId: string;
  phase: number;
  variant: string;
}

/** How a recommendationId on an event reads: an experiment's list, a plain list, or not one of ours. */
export type ReadId =
  | { kind: 'experiment'; origin: ListOrigin }
  | { kind: 'plain' }
  | { kind: 'forged' }
  | { kind: 'malformed' };

/**
 * The key that signs experiment recommendationIds: RECOMMENDATION_ID_KEY; else derived from USER_ID_KEY
 * (HMAC with a label of its own, so it never equals a pseudonym); else a fixed development key, which
 * `development` reports so the gateway can warn.
 */
export function recommendationIdKey(config: { RECOMMENDATION_ID_KEY: string; USER_ID_KEY: string }): {
  key: Buffer;
  development: boolean;
} {
  if (config.RECOMMENDATION_ID_KEY) return { key: Buffer.from(config.RECOMMENDATION_ID_KEY), development: false };
  if (config.USER_ID_KEY) {
    return { key: createHmac('sha256', config.USER_ID_KEY).update(DERIVED_LABEL).digest(), development: false };
  }
  return { key: Buffer.from(DEVELOPMENT_KEY), development: true };
}

/**
 * Signs and reads experiment recommendationIds: `x1.<experiment>.<phase>.<variant>.<nonce>.<mac>`, where the
 * mac is HMAC-SHA256 (truncated to 128 bits) of everything before it under the server's key. An event's
 * recommendationId is thus attributed to its variant without a lookup that could be lost, and an id a client
 * made up or altered is recognised as such. At most 119 characters (MAX_ID_LENGTH is 128).
 */
export class RecommendationIds {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
  }

  mint(origin: ListOrigin): string {
    const body = `${PREFIX}.${origin.experimentId}.${origin.phase}.${origin.variant}.${randomBytes(NONCE_BYTES).toString('base64url')}`;
    return `${body}.${this.#mac(body)}`;
  }

  read(id: string): ReadId {
    if (UUID.test(id)) return { kind: 'plain' };
    const parts = id.split('.');
    if (parts.length !== 6 || parts[0] !== PREFIX) return { kind: 'malformed' };
    const [, experimentId = '', phaseText = '', variant = '', , mac = ''] = parts;
    const phase = Number(phaseText);
    if (
      !EXPERIMENT_ID.test(experimentId) ||
      !VARIANT_NAME.test(variant) ||
      !/^[1-9]\d{0,8}$/.test(phaseText) ||
      mac.length !== MAC_CHARS
    ) {
      return { kind: 'malformed' };
    }
    const expected = Buffer.from(this.#mac(id.slice(0, id.length - MAC_CHARS - 1)));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { kind: 'forged' };
    return { kind: 'experiment', origin: { experimentId, phase, variant } };
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#key).update(body).digest('base64url').slice(0, MAC_CHARS);
  }
}

/** Counts each recommendationId an attributor reads (`pgw_experiment_attributions_total`). */
export interface AttributionCounter {
  inc(labels: { outcome: 'attributed' | 'forged' | 'malformed' }): void;
}

/**
 * Attributes stored events to the experiment variant whose list they came from: the feature worker asks it for
 * each event it applies (the attribution is written with the event's processed mark, see markEventsProcessed),
 * so the acknowledgement path spends nothing on it. An id that is neither a plain list's nor an experiment's,
 * or whose signature does not match, is counted (malformed, forged) and otherwise ignored: the event stays
 * stored, unattributed.
 */
export class EventAttributor {
  readonly #ids: RecommendationIds;
  readonly #counter: AttributionCounter;

  constructor(ids: RecommendationIds, counter: AttributionCounter) {
    this.#ids = ids;
    this.#counter = counter;
  }

  /** The variant a recommendationId verifiably names, or null (a plain list's id, or a forged or malformed one). */
  originOf(recommendationId: string): ListOrigin | null {
    const read = this.#ids.read(recommendationId);
    if (read.kind === 'plain') return null;
    this.#counter.inc({ outcome: read.kind === 'experiment' ? 'attributed' : read.kind });
    return read.kind === 'experiment' ? read.origin : null;
  }
}

/**
 * A shopper's two uniform draws for an experiment, from SHA-256 of (salt, userId): `traffic` decides whether
 * they are in it at all (below the traffic share), `variant` which variant (by cumulative weight). The same on
 * every gateway and after every restart, with no table to look up; independent of each other, so changing
 * the traffic share does not reshuffle the variants of those who stay in.
 */
export function bucketsOf(salt: string, userId: string): { traffic: number; variant: number } {
  const digest = createHash('sha256').update(salt).update('\u0000').update(userId).digest();
  return { traffic: digest.readUInt32BE(0) / 2 ** 32, variant: digest.readUInt32BE(4) / 2 ** 32 };
}

/** The index of the variant a draw in [0, 1) falls into, by cumulative weight. */
export function variantIndex(draw: number, weights: readonly number[]): number {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let cumulative = 0;
  for (let index = 0; index < weights.length; index++) {
    cumulative += weights[index] ?? 0;
    if (draw * total < cumulative) return index;
  }
  return weights.length - 1;
}
