// Popularity: every shopper gets the items most users interacted with. The floor every other model must beat,
// and the cold-start candidate source.
import type { Csr } from './interactions.ts';
import type { Recommender } from './recommender.ts';

/** Counts distinct users per item from the user → item matrix. */
export function fitPopularity(userItems: Csr): Recommender {
  const counts = new Float32Array(userItems.cols);
  const nnz = userItems.indptr[userItems.rows] as number;
  for (let i = 0; i < nnz; i++) {
    const j = userItems.indices[i] as number;
    counts[j] = (counts[j] as number) + 1;
  }
  return {
    name: 'popularity',
    score(_items, _weights, out) {
      out.set(counts);
    },
  };
}
