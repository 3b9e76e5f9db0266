import { describe, expect, it } from 'vitest';
import { temporalSplit } from '../../../src/model/split.ts';
import { purchaseLog as log } from '../../helpers/interaction-log.ts';

describe('temporalSplit', () => {
  it('when a user has 5 distinct items then the last one by first purchase is held out with all its events', () => {
    // User 0 buys items 10..14 at times 5,4,3,2,1 (written out of order), and item 13 again at time 9.
    const data = log([
      [0, 10, 5],
      [0, 11, 4],
      [0, 12, 3],
      [0, 13, 2],
      [0, 14, 1],
      [0, 13, 9],
    ]);

    const split = temporalSplit(data, 1, 15);

    expect(Array.from(split.testItems)).toEqual([10]);
    expect(Array.from(split.trainRows)).toEqual([1, 2, 3, 4, 5]);
  });

  it('when a user has fewer than 5 distinct items then they stay wholly in training', () => {
    const data = log([
      [0, 1, 1],
      [0, 2, 2],
      [0, 3, 3],
      [0, 4, 4],
      [0, 4, 5],
    ]);

    const split = temporalSplit(data, 1, 5);

    expect(split.testItems.length).toBe(0);
    expect(split.trainRows.length).toBe(5);
  });

  it('holds out round(20 %) of the distinct items, in order of first interaction, per user', () => {
    // User 0: 8 distinct items → 2 held out (items 6, 7); user 1: 7 distinct → 1 held out (item 16).
    const rows: [number, number, number][] = [];
    for (let i = 0; i < 8; i++) rows.push([0, i, 100 + i]);
    for (let i = 0; i < 7; i++) rows.push([1, 10 + i, 200 + i]);
    rows.push([0, 2, 999]); // a repeat of an early item later does not move its first-purchase order

    const split = temporalSplit(log(rows), 2, 20);

    expect(Array.from(split.testIndptr)).toEqual([0, 2, 3]);
    expect(Array.from(split.testItems)).toEqual([6, 7, 16]);
    expect(split.trainRows.length).toBe(rows.length - 3);
  });

  it('keeps the log order for events at the same time', () => {
    const data = log([
      [0, 5, 1],
      [0, 4, 1],
      [0, 3, 1],
      [0, 2, 1],
      [0, 1, 1],
    ]);

    const split = temporalSplit(data, 1, 6);

    expect(Array.from(split.testItems)).toEqual([1]);
  });
});
