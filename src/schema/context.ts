import type { Db } from '../db/client.ts';
import type { CatalogService } from '../services/catalog.ts';
import type { EventService } from '../services/events.ts';
import type { RecommendationService } from '../services/recommendations.ts';
import type { ShopperService } from '../services/shoppers.ts';

/** What the product does, as the resolvers see it. */
export interface Services {
  events: EventService;
  catalog: CatalogService;
  recommendations: RecommendationService;
  shoppers: ShopperService;
}

/** Per-request context; the same services for every request of a process. */
export interface Context {
  db: Db;
  services: Services;
}
