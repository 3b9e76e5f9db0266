// Fold-in: one shopper's vector from their weighted interactions against fixed item factors. It is the exact
// ALS user step for that one row, so a trained shopper folds in to the vector training gave them (up to the
// CG tolerance), and a new shopper gets the vector training would have given them.
import { type ConfidenceParams, confidenceMinusOne, makeScratch, type Scratch, solveRowExact } from './als-kernel.ts';

/** What fold-in needs of a trained ALS model. */
export interface FoldInModel extends ConfidenceParams {
  readonly factors: number;
  readonly lambda: number;
  /** Items × factors, row-major. */
  readonly itemFactors: Float32Array;
  /** YᵀY of the item factors (factors × factors), computed once per model. */
  readonly itemGram: Float64Array;
}

/**
 * The shopper vector for distinct `items` with summed event `weights`. Pass `scratch` (from
 * `makeFoldInScratch`) and `out` to avoid allocating on a hot path.
 */
export function foldIn(
  model: FoldInModel,
  items: ArrayLike<number>,
  weights: ArrayLike<number>,
  out: Float32Array = new Float32Array(model.factors),
  scratch: Scratch = makeScratch(model.factors),
): Float32Array {
  const cm1 = new Float64Array(items.length);
  for (let i = 0; i < items.length; i++) cm1[i] = confidenceMinusOne(weights[i] as number, model);
  solveRowExact(model.itemFactors, model.itemGram, model.factors, model.lambda, items, cm1, 0, items.length, scratch);
  for (let f = 0; f < model.factors; f++) out[f] = scratch.b[f] as number;
  return out;
}

/** Scratch space for repeated fold-ins at one factor count. */
export function makeFoldInScratch(factors: number): Scratch {
  return makeScratch(factors);
}
