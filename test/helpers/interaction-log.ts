import type { InteractionLog } from '../../src/model/interactions.ts';

/** A log of purchases (type 0, value 1) from (user, item, time ms) rows, in the given row order. */
export function purchaseLog(rows: readonly (readonly [number, number, number])[]): InteractionLog {
  return {
    user: Int32Array.from(rows.map((r) => r[0])),
    item: Int32Array.from(rows.map((r) => r[1])),
    time: Float64Array.from(rows.map((r) => r[2])),
    type: new Uint8Array(rows.length),
    value: new Float32Array(rows.length).fill(1),
  };
}
