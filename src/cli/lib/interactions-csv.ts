// Reads `user,item,timestamp[,type][,value]` CSV files (header row required) into a columnar interaction log
// with dense ids. Several files read into the same id tables share indices (train and test files).
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import type { InteractionLog } from '../../model/interactions.ts';

/** String ids ↔ dense indices, shared across the files of one evaluation. */
export class IdTables {
  readonly users = new Map<string, number>();
  readonly items = new Map<string, number>();
  readonly types = new Map<string, number>();

  static indexOf(table: Map<string, number>, key: string): number {
    let id = table.get(key);
    if (id === undefined) {
      id = table.size;
      table.set(key, id);
    }
    return id;
  }

  typeNames(): string[] {
    return [...this.types.keys()];
  }
}

/**
 * Epoch milliseconds from an ISO-8601 string or a number of epoch seconds or milliseconds (a number below 1e11
 * is taken as seconds: 1e11 s is the year 5138, 1e11 ms is 1973). ISO without a zone is read as UTC.
 */
export function parseTimestamp(text: string): number {
  const t = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    return Math.abs(n) < 1e11 ? n * 1000 : n;
  }
  let iso = t.includes('T') ? t : t.replace(' ', 'T');
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(iso)) iso += 'Z';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`unreadable timestamp: ${JSON.stringify(text)}`);
  return ms;
}

/** A growable column, doubling like an array list but staying a typed array. */
class Column<T extends Int32Array | Float64Array | Float32Array | Uint8Array> {
  length = 0;
  constructor(
    private data: T,
    private readonly make: (n: number) => T,
  ) {}
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = this.make(this.data.length * 2);
      bigger.set(this.data as unknown as ArrayLike<number>);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  done(): T {
    return this.data.slice(0, this.length) as T;
  }
}

/** Parses CSV text records (from a file or a string) into a log using `ids`. */
export async function readInteractionRecords(
  records: AsyncIterable<string[]>,
  ids: IdTables,
  source = 'input',
): Promise<InteractionLog> {
  const user = new Column(new Int32Array(1024), (n) => new Int32Array(n));
  const item = new Column(new Int32Array(1024), (n) => new Int32Array(n));
  const time = new Column(new Float64Array(1024), (n) => new Float64Array(n));
  const type = new Column(new Uint8Array(1024), (n) => new Uint8Array(n));
  const value = new Column(new Float32Array(1024), (n) => new Float32Array(n));
  let header: string[] | undefined;
  let col = { user: -1, item: -1, timestamp: -1, type: -1, value: -1 };
  let line = 0;
  for await (const record of records) {
    line++;
    if (!header) {
      header = record.map((h) => h.trim().toLowerCase());
      col = {
        user: header.indexOf('user'),
        item: header.indexOf('item'),
        timestamp: header.indexOf('timestamp'),
        type: header.indexOf('type'),
        value: header.indexOf('value'),
      };
      if (col.user < 0 || col.item < 0 || col.timestamp < 0) {
        throw new Error(`${source}: the header must name user, item and timestamp (got ${record.join(',')})`);
      }
      continue;
    }
    const u = record[col.user];
    const i = record[col.item];
    const ts = record[col.timestamp];
    if (u === undefined || i === undefined || ts === undefined || u === '' || i === '') {
      throw new Error(`${source}:${line}: missing user, item or timestamp`);
    }
    user.push(IdTables.indexOf(ids.users, u));
    item.push(IdTables.indexOf(ids.items, i));
    time.push(parseTimestamp(ts));
    const typeName = col.type >= 0 ? (record[col.type] ?? '') : '';
    const t = IdTables.indexOf(ids.types, typeName === '' ? 'event' : typeName);
    if (t > 255) throw new Error(`${source}: more than 256 event types`);
    type.push(t);
    const v = col.value >= 0 ? Number(record[col.value] ?? '') : 1;
    value.push(Number.isFinite(v) ? v : 1);
  }
  return { user: user.done(), item: item.done(), time: time.done(), type: type.done(), value: value.done() };
}

/** CSV records of a file (gzip if the name ends in .gz). */
export function csvRecords(path: string): AsyncIterable<string[]> {
  const input = createReadStream(path);
  const parser = parse({ relax_column_count: true, skip_empty_lines: true });
  return (path.endsWith('.gz') ? input.pipe(createGunzip()) : input).pipe(parser);
}

/** Reads one interaction CSV file into a log using `ids`. */
export function readInteractionsFile(path: string, ids: IdTables): Promise<InteractionLog> {
  return readInteractionRecords(csvRecords(path), ids, path);
}
