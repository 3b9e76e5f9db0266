// The one contract the evaluation, tuning and (later) serving use for every model.

/**
 * A fitted model. `score` ranks every item for one shopper described only by their history, so a shopper the
 * model never saw is scored the same way as a trained one (ALS folds them in).
 */
export interface Recommender {
  readonly name: string;
  /**
   * Writes a score for every item into `out` (length = item count); higher is better. `items` and `weights`
   * are the shopper's distinct items and summed event weights; `ages`, when known, how many days before the
   * shopper's newest event each item was last touched (a recency-weighted model reads it).
   */
  score(items: Int32Array, weights: Float32Array, out: Float32Array, ages?: Float32Array): void;
}

/**
 * A model whose scores are linear in the shopper's history: score = Σ over history items of that item's row.
 * `row` is what a neighbour table keeps (top N of it) to serve the model.
 */
export interface ItemToItemModel extends Recommender {
  /** Writes `item`'s weight towards every item into `out` (length = item count). */
  row(item: number, out: Float32Array): void;
}
