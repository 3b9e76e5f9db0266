// A vector for an item the model was not trained on, from the items shoppers touch in the same sessions.

/** A trained item (its row in the factor matrix) and how strongly it is tied to the new item. */
export interface WeightedRow {
  row: number;
  weight: number;
}

/**
 * The weight-averaged vectors of the item's co-visited neighbours, or undefined without any. An average of
 * neighbours sits among them in the embedding space, so the new item is retrieved for the shoppers those
 * neighbours suit and pulls a shopper who touches it towards them. It is shorter than a trained vector of a
 * popular item, so it ranks conservatively until a retrain learns the item properly.
 */
export function vectorFromNeighbours(
  itemFactors: Float32Array,
  factors: number,
  neighbours: readonly WeightedRow[],
): Float32Array | undefined {
  let total = 0;
  for (const { weight } of neighbours) total += weight;
  if (!(total > 0)) return undefined;
  const vector = new Float32Array(factors);
  for (const { row, weight } of neighbours) {
    const share = weight / total;
    for (let f = 0, at = row * factors; f < factors; f++, at++)
      vector[f] = (vector[f] as number) + share * (itemFactors[at] as number);
  }
  return vector;
}
