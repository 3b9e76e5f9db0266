import type { Db } from '../db/client.ts';
import type { CatalogService } from '../services/catalog.ts';
import type { EventService } from '../services/events.ts';
import type { RecommendationService } from '../services/recommendations.ts';

/** What the product does, as the resolvers see it. */
export interface Services {
  events: EventService;
  catalog: CatalogService;
  recommendations: RecommendationService;
}

/** Per-request context; the same services for every request of a process. */
export interface Context {
  db: Db;
  services: Services;
}
