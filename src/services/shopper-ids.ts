import { createHmac } from 'node:crypto';
import { checkId } from './validation.ts';

/** Domain label of the erasure log's subject key, so it never equals a pseudonym under the same secret. */
const SUBJECT_LABEL = 'pgw-erasure-log';

/**
 * The forms a shopper id takes inside the gateway. With USER_ID_KEY set, `internal` replaces the shop's id by
 * a pseudonym, HMAC-SHA256 under that key, at the edge (resolvers, REST): Postgres, Redis, queues, models and
 * logs only ever see the pseudonym, and the answers give back the id the caller sent. `subject` is what the erasure log keeps of an (internal)
 * id: HMAC-SHA256 under a key derived from `secret`, so the log can answer "was this id erased?" without naming
 * anyone. With an empty secret the key is a fixed label: the log still holds no id, but whoever holds the
 * database can test guessed ids against it.
 */
export class ShopperIds {
  readonly #subjectKey: Buffer;
  readonly #secret: string;

  constructor(secret: string) {
    this.#secret = secret;
    this.#subjectKey = createHmac('sha256', secret).update(SUBJECT_LABEL).digest();
  }

  /** Whether ids are pseudonymised (USER_ID_KEY set). */
  get pseudonymising(): boolean {
    return this.#secret !== '';
  }

  /**
   * The pseudonym of a shop's id (under USER_ID_KEY): `p_` and the base64url HMAC-SHA256, 45 characters (the
   * form `pseudonymiseStoredIds` recognises).
   */
  pseudonym(userId: string): string {
    return `p_${createHmac('sha256', this.#secret).update(userId).digest('base64url')}`;
  }

  /**
   * The id the gateway stores for a shop's id, checked as any id is first (`field` names it in the error):
   * its pseudonym with USER_ID_KEY set, else the id itself.
   */
  internal(field: string, userId: string): string {
    checkId(field, userId);
    return this.pseudonymising ? this.pseudonym(userId) : userId;
  }

  /** The erasure log's key for an internal shopper id (hex). */
  subject(userId: string): string {
    return createHmac('sha256', this.#subjectKey).update(userId).digest('hex');
  }
}
