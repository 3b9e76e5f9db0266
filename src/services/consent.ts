import type { Db } from '../db/client.ts';
import { storeConsent } from '../db/consent.ts';
import { UnavailableError } from '../errors.ts';
import type { ErasureService } from './erasure.ts';
import type { FeatureStore } from './features.ts';

/**
 * A shopper's consent to personalisation. Without it their events still count toward trending, but nothing
 * of theirs is built (online profile, history, purchases, vectors) and their lists are non-personal;
 * withdrawing it removes what was built, as an erasure does, but keeps their events in the log.
 */
export class ConsentService {
  readonly #db: Db;
  readonly #features: FeatureStore;
  readonly #erasure: ErasureService;

  constructor(deps: { db: Db; features: FeatureStore; erasure: ErasureService }) {
    this.#db = deps.db;
    this.#features = deps.features;
    this.#erasure = deps.erasure;
  }

  /**
   * Records the shopper's choice. A withdrawal (or a refusal) removes what was built of them; a grant lets
   * their next event build from what the consent covers. With `onlyOnChange` (events that carry consent) the
   * removal runs only when personalisation was allowed before; `setConsent` always runs it.
   */
  async set(userId: string, personalization: boolean, options: { onlyOnChange?: boolean } = {}): Promise<void> {
    let before: boolean;
    try {
      before = await storeConsent(this.#db, userId, personalization, this.#features.personalByDefault);
    } catch (error) {
      throw new UnavailableError('postgres', 'the shopper store', error);
    }
    if (options.onlyOnChange && before === personalization) return;
    if (!personalization) {
      await this.#erasure.remove(userId, 'CONSENT_WITHDRAWN');
      return;
    }
    try {
      await this.#features.grantShopper(userId);
    } catch (error) {
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
  }
}
