// The co-occurrence baseline: "shoppers who bought this also bought", raw counts of shared users.
import type { Csr } from './interactions.ts';
import { fitItemSimilarity, type ItemSimilarityModel } from './item-similarity.ts';

/** Parameters of the co-occurrence baseline. */
export interface CooccurrenceParams {
  readonly neighbours?: number;
}

/** Raw co-occurrence counts, top `neighbours` per item. */
export function fitCooccurrence(userItems: Csr, itemUsers: Csr, params: CooccurrenceParams = {}): ItemSimilarityModel {
  return fitItemSimilarity('cooccurrence', userItems, itemUsers, {
    neighbours: params.neighbours ?? 100,
    similarity: 'count',
  });
}
