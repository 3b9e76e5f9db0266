import type { Db } from '../db/client.ts';
import type { Caller } from '../services/access.ts';
import type { KeyStore } from '../services/api-keys.ts';
import type { CatalogService } from '../services/catalog.ts';
import type { ConsentService } from '../services/consent.ts';
import type { ErasureService } from '../services/erasure.ts';
import type { EventService } from '../services/events.ts';
import type { ExperimentService } from '../services/experiments.ts';
import type { ModelService } from '../services/models.ts';
import type { PlacementService } from '../services/placements.ts';
import type { RecommendationService } from '../services/recommendations.ts';
import type { ShopperIds } from '../services/shopper-ids.ts';
import type { ShopperService } from '../services/shoppers.ts';
import type { TrainingService } from '../services/training-jobs.ts';

/** What the product does, as the resolvers see it. */
export interface Services {
  events: EventService;
  catalog: CatalogService;
  recommendations: RecommendationService;
  shoppers: ShopperService;
  models: ModelService;
  training: TrainingService;
  keys: KeyStore;
  placements: PlacementService;
  experiments: ExperimentService;
  erasure: ErasureService;
  consent: ConsentService;
  /** Shopper ids as the gateway stores them: resolvers turn every id a caller sends into its internal form. */
  ids: ShopperIds;
}

/** Per-request context; the same services for every request of a process. */
export interface Context {
  db: Db;
  services: Services;
  /** Who is calling (API key scope, shopper token); the fields' `authScopes` and `assertMayActAs` check it. */
  caller: Caller;
}
