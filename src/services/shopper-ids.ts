import { createHmac } from 'node:crypto';

/** Domain label of the erasure log's subject key, so it never equals a pseudonym under the same secret. */
const SUBJECT_LABEL = 'pgw-erasure-log';

/**
 * The forms a shopper id takes inside the gateway. `subject` is what the erasure log keeps of an (internal)
 * id: HMAC-SHA256 under a key derived from `secret`, so the log can answer "was this id erased?" without naming
 * anyone. With an empty secret the key is a fixed label: the log still holds no id, but whoever holds the
 * database can test guessed ids against it.
 */
export class ShopperIds {
  readonly #subjectKey: Buffer;

  constructor(secret: string) {
    this.#subjectKey = createHmac('sha256', secret).update(SUBJECT_LABEL).digest();
  }

  /** The erasure log's key for an internal shopper id (hex). */
  subject(userId: string): string {
    return createHmac('sha256', this.#subjectKey).update(userId).digest('hex');
  }
}
