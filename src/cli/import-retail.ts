// `npm run import:retail -- --out file.csv [--in online_retail_II.csv.gz]`: writes the interaction CSV
// (user,item,timestamp,type,value) the evaluate and tune commands read, purchases only.
// Data: Chen, D. (2012). Online Retail II. UCI ML Repository, CC BY 4.0, https://doi.org/10.24432/C5CG6D

import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../logger.ts';
import { Progress } from '../progress.ts';
import { RETAIL_GZ, readRetailPurchases } from './lib/retail.ts';

const { values } = parseArgs({ options: { out: { type: 'string' }, in: { type: 'string', default: RETAIL_GZ } } });
if (!values.out) {
  console.error('usage: npm run import:retail -- --out file.csv [--in online_retail_II.csv.gz]');
  process.exit(2);
}
if (!existsSync(values.in)) {
  console.error(
    [
      `No Online Retail II file at ${values.in}.`,
      'The data set is not shipped with this project (the demo uses a small slice of it, data/demo/).',
      'Download "Online Retail II" from the UCI Machine Learning Repository (https://doi.org/10.24432/C5CG6D,',
      'CC BY 4.0), save it as a CSV (gzipped or not), and pass its path:',
      '  npm run import:retail -- --in path/to/online_retail_II.csv.gz --out retail.csv',
    ].join('\n'),
  );
  process.exit(2);
}
// Progress goes to stderr: stdout may be piped.
const progress = new Progress(createLogger('info', 'import', 2), 'reading Online Retail II');
const out = createWriteStream(values.out);
out.write('user,item,timestamp,type,value\n');
let rows = 0;
for await (const row of readRetailPurchases(values.in)) {
  if (!out.write(`${row.user},${row.item},${row.timestamp},purchase,${row.quantity}\n`)) await once(out, 'drain');
  rows++;
  if (rows % 10_000 === 0) progress.update(rows);
}
progress.finish({ rows });
out.end();
await once(out, 'finish');
console.error(`wrote ${rows} purchase rows to ${values.out}`);
