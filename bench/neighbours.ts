// `npm run bench -- neighbours [--items 20000] [--neighbours 100] [--history 50] [--rankings 20000]`
// What serving an item-to-item version costs the gateway per list: `rankHistory` (a shopper's latest 50 items
// times the version's neighbour table, then the best 64 of the items reached in order; beside it, every
// item reached sorted) on a synthetic table whose
// neighbours lean towards popular items, as EASE's and item-kNN's do. Beside it, the ALS path's fold-in of 50
// interactions is quoted by `bench train`.
import { parseArgs } from 'node:util';
import { seededRandom } from '../src/model/als.ts';
import { makeRankingScratch, rankHistory } from '../src/model/neighbour-ranking.ts';
import { neighbourTableFromRows } from '../src/model/neighbour-table.ts';
import { percentile, writeResults } from './lib/results.ts';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '20000' },
    neighbours: { type: 'string', default: '100' },
    history: { type: 'string', default: '50' },
    rankings: { type: 'string', default: '20000' },
  },
});
const items = Number(values.items);
const n = Number(values.neighbours);
const historyLength = Number(values.history);
const rankings = Number(values.rankings);
const random = seededRandom(7);
// A popularity-skewed target: item ⌊items · u²⌋ is drawn more often the lower its index.
const skewed = () => Math.floor(items * random() ** 2);

let started = performance.now();
const table = neighbourTableFromRows(items, n, (_i, out) => {
  for (let d = 0; d < 3 * n; d++) out[skewed()] = random();
});
const buildSeconds = (performance.now() - started) / 1000;

const scratch = makeRankingScratch(items);
const times: number[] = [];
const fullTimes: number[] = [];
// What the learned source ranks first (RANKED_FIRST in candidate-sources.ts); deeper pages rank more.
const limit = 64;
let reached = 0;
for (let r = 0; r < rankings; r++) {
  const history = Int32Array.from({ length: historyLength }, skewed);
  const weights = Float32Array.from({ length: historyLength }, () => 1);
  started = performance.now();
  const ranking = rankHistory(table, history, weights, scratch, limit);
  times.push(performance.now() - started);
  reached += ranking.reached;
  // The full sort, as the first version ranked every list.
  started = performance.now();
  rankHistory(table, history, weights, scratch);
  fullTimes.push(performance.now() - started);
}
times.sort((a, b) => a - b);
fullTimes.sort((a, b) => a - b);
const ms = (v: number) => Math.round(v * 1000) / 1000;
writeResults('neighbours', {
  command: `npm run bench -- neighbours --items ${items} --neighbours ${n} --history ${historyLength}`,
  table: { items, neighbours: n, nnz: table.indices.length, bytes: table.indices.length * 8 + (items + 1) * 4 },
  tableBuildSeconds: Math.round(buildSeconds * 10) / 10,
  rankHistory: {
    rankings,
    historyItems: historyLength,
    itemsReachedMean: Math.round(reached / rankings),
    limit,
    p50Ms: ms(percentile(times, 50)),
    p99Ms: ms(percentile(times, 99)),
    maxMs: ms(times[times.length - 1] ?? Number.NaN),
    everyItemSorted: { p50Ms: ms(percentile(fullTimes, 50)), p99Ms: ms(percentile(fullTimes, 99)) },
  },
});
