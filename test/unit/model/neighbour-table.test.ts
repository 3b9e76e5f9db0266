import { describe, expect, it } from 'vitest';
import {
  decodeNeighbourTable,
  encodeNeighbourTable,
  neighbourTableFromRows,
  scoreHistory,
} from '../../../src/model/neighbour-table.ts';

// Item i's weight towards j: a fixed pseudo-random matrix with some negatives and zeros.
const weight = (i: number, j: number) => ((i * 31 + j * 17) % 11) - 3;

describe('neighbour table', () => {
  const items = 40;
  const table = neighbourTableFromRows(items, 5, (i, out) => {
    for (let j = 0; j < items; j++) out[j] = weight(i, j);
  });

  it("keeps each row's strongest positive neighbours, strongest first, never the item itself", () => {
    for (let i = 0; i < items; i++) {
      const row = [...table.indices.subarray(table.indptr[i], table.indptr[i + 1])];
      const kept = [...table.weights.subarray(table.indptr[i], table.indptr[i + 1])];
      const expected = Array.from({ length: items }, (_, j) => j)
        .filter((j) => j !== i && weight(i, j) > 0)
        .map((j) => weight(i, j))
        .sort((a, b) => b - a)
        .slice(0, 5);
      expect(kept).toEqual(expected);
      expect(row).not.toContain(i);
      for (let n = 0; n < row.length; n++) expect(weight(i, row[n] as number)).toBe(kept[n]);
    }
  });

  it('scores a history as the weighted sum of its rows and names the items it reached', () => {
    const out = new Float32Array(items);
    const touched = new Set<number>();
    scoreHistory(table, Int32Array.of(2, 7), Float32Array.of(1, 0.5), out, touched);
    const expected = new Float32Array(items);
    for (const [item, w] of [
      [2, 1],
      [7, 0.5],
    ] as const) {
      for (let p = table.indptr[item] as number; p < (table.indptr[item + 1] as number); p++) {
        const j = table.indices[p] as number;
        expected[j] = (expected[j] as number) + w * (table.weights[p] as number);
      }
    }
    expect([...out]).toEqual([...expected]);
    expect([...touched].sort((a, b) => a - b)).toEqual(
      [...expected.keys()].filter((j) => (expected[j] as number) !== 0),
    );
  });

  it('survives storage byte for byte, from unaligned bytes too', () => {
    const bytes = encodeNeighbourTable(table);
    const unaligned = new Uint8Array(bytes.byteLength + 1).subarray(1);
    unaligned.set(bytes);
    const back = decodeNeighbourTable(unaligned);
    expect(back.items).toBe(items);
    expect(back.neighbours).toBe(5);
    expect([...back.indptr]).toEqual([...table.indptr]);
    expect([...back.indices]).toEqual([...table.indices]);
    expect([...back.weights]).toEqual([...table.weights]);
    expect(() => decodeNeighbourTable(bytes.subarray(0, bytes.byteLength - 4))).toThrow(/header says/);
  });
});
