// The per-user temporal hold-out of /work/shared/datasets/README.md: for each user, the distinct items in order
// of first interaction; users with fewer than `minItems` stay wholly in training; otherwise the last
// `testFraction` of them (rounded, at least 1) are held out, and every event on a held-out item leaves training.
import type { InteractionLog } from './interactions.ts';

/** Options of {@link temporalSplit}; the defaults are the protocol's. */
export interface SplitOptions {
  readonly minItems?: number;
  readonly testFraction?: number;
}

/** A split: the log rows kept for training, and each user's held-out items (CSR over users). */
export interface TemporalSplit {
  /** Row numbers of the input log that form the training part, ascending. */
  readonly trainRows: Int32Array;
  /** User u's held-out items are `testItems[testIndptr[u]..testIndptr[u+1])`, in order of first interaction. */
  readonly testIndptr: Int32Array;
  readonly testItems: Int32Array;
}

/** Splits `log` per user by time. Ties in time keep the log's row order. */
export function temporalSplit(
  log: InteractionLog,
  users: number,
  items: number,
  options: SplitOptions = {},
): TemporalSplit {
  const minItems = options.minItems ?? 5;
  const fraction = options.testFraction ?? 0.2;
  const n = log.user.length;

  // Rows grouped by user (counting sort keeps row order), then each group ordered by time, stable.
  const start = new Int32Array(users + 1);
  for (let i = 0; i < n; i++) {
    const u = (log.user[i] as number) + 1;
    start[u] = (start[u] as number) + 1;
  }
  for (let u = 0; u < users; u++) start[u + 1] = (start[u + 1] as number) + (start[u] as number);
  const fill = start.slice(0, users);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const u = log.user[i] as number;
    const at = fill[u] as number;
    fill[u] = at + 1;
    order[at] = i;
  }
  for (let u = 0; u < users; u++) {
    const group = order.subarray(start[u] as number, start[u + 1] as number);
    if (group.length > 1) {
      const sorted = Array.from(group).sort((a, b) => (log.time[a] as number) - (log.time[b] as number) || a - b);
      group.set(sorted);
    }
  }

  // `stamp[item]` = u+1 when item was seen for user u; `held[item]` = u+1 when it is held out for u.
  const stamp = new Int32Array(items);
  const held = new Int32Array(items);
  const distinct = new Int32Array(items);
  const testIndptr = new Int32Array(users + 1);
  const testItems: number[] = [];
  const keep = new Uint8Array(n);
  for (let u = 0; u < users; u++) {
    let count = 0;
    for (let j = start[u] as number; j < (start[u + 1] as number); j++) {
      const item = log.item[order[j] as number] as number;
      if (stamp[item] !== u + 1) {
        stamp[item] = u + 1;
        distinct[count++] = item;
      }
    }
    if (count >= minItems) {
      const nTest = Math.max(1, Math.round(fraction * count));
      for (let j = count - nTest; j < count; j++) {
        const item = distinct[j] as number;
        held[item] = u + 1;
        testItems.push(item);
      }
    }
    testIndptr[u + 1] = testItems.length;
    for (let j = start[u] as number; j < (start[u + 1] as number); j++) {
      const row = order[j] as number;
      if (held[log.item[row] as number] !== u + 1) keep[row] = 1;
    }
  }
  let kept = 0;
  for (let i = 0; i < n; i++) kept += keep[i] as number;
  const trainRows = new Int32Array(kept);
  for (let i = 0, w = 0; i < n; i++) if (keep[i]) trainRows[w++] = i;
  return { trainRows, testIndptr, testItems: Int32Array.from(testItems) };
}
