// Item-to-item models: a sparse item × item similarity kept to the top neighbours of each item, scored as
// "sum of the similarities from the shopper's items". Raw co-occurrence counts are the `cooccurrence` baseline;
// a normalised (asymmetric cosine) similarity with a popularity-damping exponent is `itemknn`.
import type { Csr } from './interactions.ts';
import type { ItemToItemModel } from './recommender.ts';

/** Hyper-parameters of an item-similarity model. */
export interface ItemSimilarityParams {
  /** Neighbours kept per item. */
  readonly neighbours?: number;
  /** 'count' = raw co-occurrence; 'cosine' = co / (n_j^alpha · n_i^(1-alpha) + shrink). */
  readonly similarity?: 'count' | 'cosine';
  /** Asymmetry of the cosine: 0.5 is the plain cosine. */
  readonly alpha?: number;
  readonly shrink?: number;
  /** A user with n items contributes 1/n^userPenalty to each co-occurrence (0 = every user counts 1). */
  readonly userPenalty?: number;
  /** Similarities are raised to this power when scoring, sharpening the strongest neighbours. */
  readonly power?: number;
}

/** An item-similarity model; `similar(item)` exposes the neighbour list as a candidate source. */
export interface ItemSimilarityModel extends ItemToItemModel {
  similar(item: number): { items: Int32Array; scores: Float32Array };
}

/** Fits the neighbour lists from the user → item matrix (only which items a user has matters, not weights). */
export function fitItemSimilarity(
  name: string,
  userItems: Csr,
  itemUsers: Csr,
  params: ItemSimilarityParams = {},
): ItemSimilarityModel {
  const items = userItems.cols;
  const neighbours = params.neighbours ?? 200;
  const cosine = (params.similarity ?? 'cosine') === 'cosine';
  const alpha = params.alpha ?? 0.5;
  const shrink = params.shrink ?? 0;
  const penalty = params.userPenalty ?? 0;
  const power = params.power ?? 1;

  const userWeight = new Float64Array(userItems.rows);
  for (let u = 0; u < userItems.rows; u++) {
    const n = (userItems.indptr[u + 1] as number) - (userItems.indptr[u] as number);
    userWeight[u] = n === 0 ? 0 : n ** -penalty;
  }
  const itemMass = new Float64Array(items);
  for (let i = 0; i < items; i++) {
    for (let p = itemUsers.indptr[i] as number; p < (itemUsers.indptr[i + 1] as number); p++) {
      itemMass[i] = (itemMass[i] as number) + (userWeight[itemUsers.indices[p] as number] as number);
    }
  }

  const indptr = new Int32Array(items + 1);
  const chunks: { idx: Int32Array; val: Float32Array }[] = [];
  const acc = new Float64Array(items);
  const touched = new Int32Array(items);
  const heapIdx = new Int32Array(neighbours);
  const heapVal = new Float64Array(neighbours);
  for (let j = 0; j < items; j++) {
    let nTouched = 0;
    for (let p = itemUsers.indptr[j] as number; p < (itemUsers.indptr[j + 1] as number); p++) {
      const u = itemUsers.indices[p] as number;
      const w = userWeight[u] as number;
      for (let q = userItems.indptr[u] as number; q < (userItems.indptr[u + 1] as number); q++) {
        const i = userItems.indices[q] as number;
        if (acc[i] === 0) touched[nTouched++] = i;
        acc[i] = (acc[i] as number) + w;
      }
    }
    // Keep the strongest `neighbours` of j in a min-heap (root = weakest kept).
    let size = 0;
    const massJ = (itemMass[j] as number) ** alpha;
    for (let t = 0; t < nTouched; t++) {
      const i = touched[t] as number;
      const co = acc[i] as number;
      acc[i] = 0;
      if (i === j) continue;
      const s = cosine ? co / (massJ * (itemMass[i] as number) ** (1 - alpha) + shrink) : co;
      if (size < neighbours) {
        let at = size++;
        while (at > 0) {
          const parent = (at - 1) >> 1;
          if ((heapVal[parent] as number) <= s) break;
          heapVal[at] = heapVal[parent] as number;
          heapIdx[at] = heapIdx[parent] as number;
          at = parent;
        }
        heapVal[at] = s;
        heapIdx[at] = i;
      } else if (s > (heapVal[0] as number)) {
        let at = 0;
        for (;;) {
          const l = 2 * at + 1;
          if (l >= size) break;
          const r = l + 1;
          const c = r < size && (heapVal[r] as number) < (heapVal[l] as number) ? r : l;
          if ((heapVal[c] as number) >= s) break;
          heapVal[at] = heapVal[c] as number;
          heapIdx[at] = heapIdx[c] as number;
          at = c;
        }
        heapVal[at] = s;
        heapIdx[at] = i;
      }
    }
    const idx = heapIdx.slice(0, size);
    const val = new Float32Array(size);
    for (let t = 0; t < size; t++) val[t] = (heapVal[t] as number) ** power;
    chunks.push({ idx, val });
    indptr[j + 1] = (indptr[j] as number) + size;
  }
  const nnz = indptr[items] as number;
  const simIdx = new Int32Array(nnz);
  const simVal = new Float32Array(nnz);
  for (let j = 0; j < items; j++) {
    const chunk = chunks[j];
    if (!chunk) continue;
    simIdx.set(chunk.idx, indptr[j] as number);
    simVal.set(chunk.val, indptr[j] as number);
  }

  return {
    name,
    score(history, _weights, out) {
      out.fill(0);
      for (let h = 0; h < history.length; h++) {
        const j = history[h] as number;
        for (let p = indptr[j] as number, end = indptr[j + 1] as number; p < end; p++) {
          const i = simIdx[p] as number;
          out[i] = (out[i] as number) + (simVal[p] as number);
        }
      }
    },
    row(item, out) {
      out.fill(0);
      for (let p = indptr[item] as number, end = indptr[item + 1] as number; p < end; p++) {
        out[simIdx[p] as number] = simVal[p] as number;
      }
    },
    similar(item) {
      const from = indptr[item] as number;
      const to = indptr[item + 1] as number;
      return { items: simIdx.subarray(from, to), scores: simVal.subarray(from, to) };
    },
  };
}
