import { DomainError, UnavailableError } from '../errors.ts';
import type { Item } from '../generated/prisma/client.ts';
import type { CatalogService } from './catalog.ts';
import type { FeatureStore } from './features.ts';
import { checkId } from './validation.ts';

export interface ShopperProfile {
  userId: string;
  recentItems: Item[];
  boughtItemIds: string[];
  categoryAffinity: { category: string; weight: number }[];
}

/** A shopper's online features, as the storefront or a support tool may want to see them. */
export class ShopperService {
  readonly #features: FeatureStore;
  readonly #catalog: CatalogService;

  constructor(deps: { features: FeatureStore; catalog: CatalogService }) {
    this.#features = deps.features;
    this.#catalog = deps.catalog;
  }

  async profile(userId: string): Promise<ShopperProfile> {
    checkId('userId', userId);
    try {
      const [recent, bought, categories] = await Promise.all([
        this.#features.recentItems(userId),
        this.#features.boughtItems(userId),
        this.#features.categoryCounts(userId),
      ]);
      return {
        userId,
        recentItems: recent.flatMap((id) => this.#catalog.get(id) ?? []),
        boughtItemIds: [...bought].sort(),
        categoryAffinity: Object.entries(categories)
          .map(([category, weight]) => ({ category, weight }))
          .sort((a, b) => b.weight - a.weight),
      };
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw new UnavailableError('redis', 'Redis (online features)', error);
    }
  }
}
