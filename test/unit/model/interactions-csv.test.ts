import { describe, expect, it } from 'vitest';
import { IdTables, parseTimestamp, readInteractionRecords } from '../../../src/cli/lib/interactions-csv.ts';

async function* records(lines: string[][]): AsyncGenerator<string[]> {
  for (const line of lines) yield line;
}

describe('parseTimestamp', () => {
  it('reads ISO-8601, epoch seconds and epoch milliseconds as the same instant', () => {
    const ms = Date.UTC(2011, 11, 9, 12, 50, 0);

    expect(parseTimestamp('2011-12-09T12:50:00Z')).toBe(ms);
    expect(parseTimestamp('2011-12-09 12:50:00')).toBe(ms);
    expect(parseTimestamp('2011-12-09T13:50:00+01:00')).toBe(ms);
    expect(parseTimestamp(String(ms / 1000))).toBe(ms);
    expect(parseTimestamp(String(ms))).toBe(ms);
  });

  it('rejects text that is no timestamp', () => {
    expect(() => parseTimestamp('yesterday')).toThrow(/unreadable timestamp/);
  });
});

describe('readInteractionRecords', () => {
  it('maps ids to dense indices shared across files and fills type and value defaults', async () => {
    const ids = new IdTables();

    const train = await readInteractionRecords(
      records([
        ['user', 'item', 'timestamp'],
        ['u1', 'a', '1300000000'],
        ['u2', 'b', '1300000000000'],
      ]),
      ids,
    );
    const test = await readInteractionRecords(
      records([
        ['timestamp', 'item', 'user', 'type', 'value'],
        ['2011-03-13T07:06:40Z', 'b', 'u1', 'purchase', '3'],
      ]),
      ids,
    );

    expect(Array.from(train.user)).toEqual([0, 1]);
    expect(Array.from(train.item)).toEqual([0, 1]);
    expect(Array.from(train.time)).toEqual([1.3e12, 1.3e12]);
    expect(Array.from(train.value)).toEqual([1, 1]);
    expect(Array.from(test.user)).toEqual([0]);
    expect(Array.from(test.item)).toEqual([1]);
    expect(test.time[0]).toBe(1.3e12);
    expect(test.value[0]).toBe(3);
    expect(ids.typeNames()).toEqual(['event', 'purchase']);
  });

  it('refuses a file without the user, item and timestamp columns', async () => {
    await expect(readInteractionRecords(records([['customer', 'product']]), new IdTables())).rejects.toThrow(
      /header must name/,
    );
  });
});
