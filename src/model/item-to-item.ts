// Item-to-item forms of every family, so any of them (or a weighted blend of them) can serve from one sparse
// neighbour table: ALS as the linear map V·(VᵀV + λI)⁻¹·Vᵀ (the fold-in of a shopper without confidence
// weights, then their scores), a blend as the weighted sum of its parts' rows, and the recommender that
// scores from a neighbour table exactly as serving does.
import type { AlsModel } from './als.ts';
import { invertSpd } from './ease.ts';
import { recencyWeight } from './interactions.ts';
import { type NeighbourTable, neighbourTableFromRows, scoreHistory } from './neighbour-table.ts';
import type { ItemToItemModel, Recommender } from './recommender.ts';

/** ALS as an item × item matrix W = V·(VᵀV + λI)⁻¹·Vᵀ (symmetric): score = Σ over history items of W's rows. */
export function alsItemToItem(model: AlsModel): ItemToItemModel {
  const k = model.factors;
  const m = new Float64Array(k * k);
  m.set(model.itemGram);
  for (let f = 0; f < k; f++) m[f * k + f] = (m[f * k + f] as number) + model.lambda;
  invertSpd(m, k);
  const V = model.itemFactors;
  const t = new Float64Array(k);
  const x = new Float64Array(k);
  const project = (out: Float32Array) => {
    for (let a = 0; a < k; a++) {
      let s = 0;
      for (let b = 0; b < k; b++) s += (m[a * k + b] as number) * (x[b] as number);
      t[a] = s;
    }
    for (let j = 0; j < model.items; j++) {
      let s = 0;
      const base = j * k;
      for (let f = 0; f < k; f++) s += (V[base + f] as number) * (t[f] as number);
      out[j] = s;
    }
  };
  return {
    name: 'als-linear',
    score(history, _weights, out) {
      x.fill(0);
      for (let h = 0; h < history.length; h++) {
        const base = (history[h] as number) * k;
        for (let f = 0; f < k; f++) x[f] = (x[f] as number) + (V[base + f] as number);
      }
      project(out);
    },
    row(item, out) {
      for (let f = 0; f < k; f++) x[f] = V[item * k + f] as number;
      project(out);
    },
  };
}

/** Scores below this are "not modelled" markers (EASE's −1e30), which count as 0 inside a blend. */
const UNMODELLED = -1e29;

/** Σ_f weight_f · part_f: scores and rows alike, so the blend's neighbour table is the blend. */
export function blendItemToItem(
  parts: readonly { readonly model: ItemToItemModel; readonly weight: number }[],
  items: number,
): ItemToItemModel {
  const tmp = new Float32Array(items);
  const combine = (fill: (model: ItemToItemModel) => void, out: Float32Array) => {
    out.fill(0);
    for (const { model, weight } of parts) {
      if (weight === 0) continue;
      fill(model);
      for (let j = 0; j < items; j++) {
        const v = tmp[j] as number;
        if (v > UNMODELLED) out[j] = (out[j] as number) + weight * v;
      }
    }
  };
  return {
    name: 'blend',
    score(history, weights, out) {
      combine((model) => model.score(history, weights, tmp), out);
    },
    row(item, out) {
      combine((model) => model.row(item, tmp), out);
    },
  };
}

/** The top `neighbours` of every row of `model`: what an item-to-item version stores and serves from. */
export function neighbourTableOf(model: ItemToItemModel, items: number, neighbours: number): NeighbourTable {
  return neighbourTableFromRows(items, neighbours, (item, out) => model.row(item, out));
}

/**
 * Scores as serving does: the shopper's distinct items times the table, each item weighing 1, or with
 * `historyHalfLifeDays` halved for every that many days it was last touched before the shopper's newest event.
 */
export function tableRecommender(table: NeighbourTable, name: string, historyHalfLifeDays = 0): Recommender {
  let weights = new Float32Array(64);
  return {
    name,
    score(history, _weights, out, ages) {
      if (weights.length < history.length) weights = new Float32Array(history.length);
      for (let h = 0; h < history.length; h++) weights[h] = recencyWeight(ages?.[h], historyHalfLifeDays);
      out.fill(0);
      scoreHistory(table, history, weights.subarray(0, history.length), out);
    },
  };
}
