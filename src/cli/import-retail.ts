// `npm run import:retail -- --out file.csv [--in online_retail_II.csv.gz]`: writes the interaction CSV
// (user,item,timestamp,type,value) the evaluate and tune commands read, purchases only.
// Data: Chen, D. (2012). Online Retail II. UCI ML Repository, CC BY 4.0, https://doi.org/10.24432/C5CG6D

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { RETAIL_GZ, readRetailPurchases } from './lib/retail.ts';

const { values } = parseArgs({ options: { out: { type: 'string' }, in: { type: 'string', default: RETAIL_GZ } } });
if (!values.out) {
  console.error('usage: npm run import:retail -- --out file.csv [--in online_retail_II.csv.gz]');
  process.exit(2);
}
const out = createWriteStream(values.out);
out.write('user,item,timestamp,type,value\n');
let rows = 0;
for await (const row of readRetailPurchases(values.in)) {
  if (!out.write(`${row.user},${row.item},${row.timestamp},purchase,${row.quantity}\n`)) await once(out, 'drain');
  rows++;
}
out.end();
await once(out, 'finish');
console.error(`wrote ${rows} purchase rows to ${values.out}`);
