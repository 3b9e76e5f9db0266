// Writes data/demo/online-retail-ii-slice.csv.gz from the full Online Retail II file: purchases (no
// cancellations, positive quantity) of known customers from 2011-09-01 on, non-product codes dropped.
// Usage: node scripts/make-demo-slice.mjs path/to/online_retail_II.csv.gz
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify';

const NOT_PRODUCTS = new Set([
  'POST',
  'M',
  'D',
  'DOT',
  'BANK CHARGES',
  'AMAZONFEE',
  'C2',
  'PADS',
  'CRUK',
  'S',
  'B',
  'ADJUST',
  'TEST001',
  'TEST002',
]);
const COLUMNS = ['Invoice', 'StockCode', 'Description', 'Quantity', 'InvoiceDate', 'Price', 'Customer ID'];
const [source] = process.argv.slice(2);
if (!source) throw new Error('usage: node scripts/make-demo-slice.mjs path/to/online_retail_II.csv.gz');

await pipeline(
  createReadStream(source),
  createGunzip(),
  parse({ columns: true }),
  async function* (rows) {
    for await (const row of rows) {
      const keep =
        row['Customer ID'] &&
        !row.Invoice.startsWith('C') &&
        row.InvoiceDate >= '2011-09-01' &&
        !NOT_PRODUCTS.has(row.StockCode.trim()) &&
        Number(row.Quantity) > 0;
      if (keep) yield COLUMNS.map((column) => row[column]);
    }
  },
  stringify({ header: true, columns: COLUMNS }),
  createGzip(),
  createWriteStream(new URL('../data/demo/online-retail-ii-slice.csv.gz', import.meta.url)),
);
