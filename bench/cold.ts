// `npm run bench -- cold [--share 0.1] [--seed 1] [--threads 2] [--data path/to/online_retail_II.csv.gz]`
// Content for cold items, measured: the interactions of a random 10 % of Online Retail II's products are hidden
// from training; ALS (library defaults) learns the rest; each hidden product gets its vector from its
// description alone (src/model/content.ts: hashed TF-IDF, the factors of its closest trained products by
// content), as the worker gives a product that nobody has touched yet. Then, against the hidden interactions:
// - similar items: is one of its 10 most similar products (cosine of vectors, as similarItems ranks) bought in
//   the same invoice as it? Hit rate and precision@10, beside the 10 most popular products and 10 random ones;
// - lists: for each customer who bought it (and has a training history), is it in their top 10 (and 50) of all
//   products by their ALS vector, every cold product competing with a vector of its own? Beside cold products
//   given a random trained product's vector, and the mean vector; a popularity ranking never shows a product
//   without interactions (0 by construction).
// Online Retail II has StockCode descriptions only (no category or attributes): the content is the description.
// Data: Chen, D. (2012). Online Retail II. UCI ML Repository, CC BY 4.0, https://doi.org/10.24432/C5CG6D
import os from 'node:os';
import { parseArgs } from 'node:util';
import { csvRecords, parseTimestamp } from '../src/cli/lib/interactions-csv.ts';
import { isProductCode, RETAIL_GZ } from '../src/cli/lib/retail.ts';
import { type AlsParams, DEFAULT_ALS_PARAMS, seededRandom, trainAls } from '../src/model/als.ts';
import { createAlsExecutor } from '../src/model/als-pool.ts';
import { contentNeighbours, contentVector, fitContentMapping } from '../src/model/content.ts';
import { historyMatrix } from '../src/model/evaluation.ts';
import { vectorFromNeighbours } from '../src/model/neighbour-vector.ts';
import { writeResults } from './lib/results.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: RETAIL_GZ },
    share: { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string', default: String(Math.min(2, os.availableParallelism())) },
  },
});
const share = Number(values.share);
const random = seededRandom(Number(values.seed));
const K = 10;

// 1. Purchases with their invoice and the product's description (its most frequent spelling).
const userIndex = new Map<string, number>();
const itemIndex = new Map<string, number>();
const descriptions: Map<string, number>[] = [];
const rows: { user: number; item: number; invoice: string; time: number; quantity: number }[] = [];
let header = true;
for await (const r of csvRecords(values.data ?? RETAIL_GZ)) {
  if (header) {
    header = false;
    continue;
  }
  const [invoice = '', stockCode = '', description = '', quantity = '', invoiceDate = '', price = '', customer = ''] =
    r;
  if (invoice.startsWith('C') || customer.trim() === '' || !isProductCode(stockCode)) continue;
  const q = Number(quantity);
  if (!(q > 0) || !(Number(price) > 0)) continue;
  const userId = customer.trim().replace(/\.0$/, '');
  const itemId = stockCode.trim().toUpperCase();
  let user = userIndex.get(userId);
  if (user === undefined) {
    user = userIndex.size;
    userIndex.set(userId, user);
  }
  let item = itemIndex.get(itemId);
  if (item === undefined) {
    item = itemIndex.size;
    itemIndex.set(itemId, item);
    descriptions.push(new Map());
  }
  const spellings = descriptions[item] as Map<string, number>;
  const text = description.trim();
  if (text) spellings.set(text, (spellings.get(text) ?? 0) + 1);
  rows.push({ user, item, invoice, time: parseTimestamp(`${invoiceDate.trim().replace(' ', 'T')}Z`), quantity: q });
}
const items = itemIndex.size;
const users = userIndex.size;
const descriptionOf = (item: number) =>
  [...(descriptions[item] ?? new Map<string, number>())].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
console.error(`${rows.length} purchases, ${users} customers, ${items} products`);

// 2. Hide a random share of the products: none of their interactions is trained on.
const hidden = new Set<number>();
const order = Array.from({ length: items }, (_, i) => i);
for (let i = items - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [order[i], order[j]] = [order[j] as number, order[i] as number];
}
for (const item of order.slice(0, Math.round(share * items))) hidden.add(item);
// Trained products re-indexed 0..T-1 (the model's rows); cold products T.. after them.
const trainedOf = new Int32Array(items).fill(-1);
const trained: number[] = [];
const cold: number[] = [];
for (let item = 0; item < items; item++) {
  if (hidden.has(item)) cold.push(item);
  else {
    trainedOf[item] = trained.length;
    trained.push(item);
  }
}

// 3. ALS on the trained products' purchases.
const trainRows = rows.filter((row) => !hidden.has(row.item));
const log = {
  user: Int32Array.from(trainRows, (row) => row.user),
  item: Int32Array.from(trainRows, (row) => trainedOf[row.item] as number),
  time: Float64Array.from(trainRows, (row) => row.time),
  type: new Uint8Array(trainRows.length),
  value: Float32Array.from(trainRows, (row) => row.quantity),
};
// ALS with the library's defaults: what a shop's first training gets before any search (no parameter file
// tuned on this data set; the cold path must work on data nobody tuned for).
const params: Partial<AlsParams> = { ...DEFAULT_ALS_PARAMS };
const history = historyMatrix({ log, users, items: trained.length, typeNames: ['purchase'] }, params);
const executor = await createAlsExecutor(Number(values.threads), (why) => console.error(`one thread: ${why}`));
let started = performance.now();
const model = await trainAls(history, params, executor);
await executor.close();
const alsSeconds = (performance.now() - started) / 1000;
const f = model.factors;
console.error(`ALS on ${trained.length} products in ${alsSeconds.toFixed(1)} s`);

// 4. The content mapping, fitted on the trained products, and a vector for each cold one from its description.
started = performance.now();
const mapping = fitContentMapping(
  trained.map((item) => ({ name: descriptionOf(item) })),
  model.itemFactors,
  f,
);
const fitMs = performance.now() - started;
started = performance.now();
const coldVectors = cold.map((item) => contentVector(mapping, { name: descriptionOf(item) }));
const perItemMs = (performance.now() - started) / Math.max(1, cold.length);
const withVector = coldVectors.filter((v) => v !== undefined).length;

// 5. Ground truth from the hidden interactions: invoice partners (similar items) and buyers (lists).
const invoices = new Map<string, Set<number>>();
for (const row of rows) {
  let basket = invoices.get(row.invoice);
  if (!basket) {
    basket = new Set();
    invoices.set(row.invoice, basket);
  }
  basket.add(row.item);
}
const partners = new Map<number, Set<number>>(cold.map((item) => [item, new Set()]));
const buyers = new Map<number, Set<number>>(cold.map((item) => [item, new Set()]));
for (const basket of invoices.values()) {
  for (const item of basket) {
    const mates = partners.get(item);
    if (!mates) continue;
    for (const other of basket) if (!hidden.has(other)) mates.add(trainedOf[other] as number);
  }
}
for (const row of rows) buyers.get(row.item)?.add(row.user);

// Similar items: cosine to every trained product, top K; baselines popularity and random.
const norms = new Float32Array(trained.length);
for (let t = 0; t < trained.length; t++) {
  let sum = 0;
  for (let k = 0; k < f; k++) sum += (model.itemFactors[t * f + k] as number) ** 2;
  norms[t] = Math.sqrt(sum) || 1;
}
const popularity = new Float64Array(trained.length);
for (let u = 0; u < history.rows; u++) {
  for (let e = history.indptr[u] as number; e < (history.indptr[u + 1] as number); e++) {
    const t = history.indices[e] as number;
    popularity[t] = (popularity[t] as number) + 1;
  }
}
const topBy = (score: (t: number) => number, count: number, skip?: (t: number) => boolean) => {
  const picked: { t: number; s: number }[] = [];
  for (let t = 0; t < trained.length; t++) {
    if (skip?.(t)) continue;
    const s = score(t);
    if (picked.length < count) {
      picked.push({ t, s });
      picked.sort((a, b) => b.s - a.s);
    } else if (s > (picked[count - 1] as { s: number }).s) {
      picked[count - 1] = { t, s };
      picked.sort((a, b) => b.s - a.s);
    }
  }
  return picked.map((p) => p.t);
};
const popular = topBy((t) => popularity[t] as number, K);
// A stricter truth than sharing an invoice (invoices are large, and bestsellers share most of them): the cold
// product's 10 strongest partners by the cosine of their buyer sets, over every customer (hidden purchases too).
const buyersOfTrained = new Int32Array(trained.length);
const itemsOfUser = new Map<number, Set<number>>();
for (const row of rows) {
  let bought = itemsOfUser.get(row.user);
  if (!bought) {
    bought = new Set();
    itemsOfUser.set(row.user, bought);
  }
  bought.add(row.item);
}
for (const bought of itemsOfUser.values()) {
  for (const item of bought) {
    const t = trainedOf[item] as number;
    if (t >= 0) buyersOfTrained[t] = (buyersOfTrained[t] as number) + 1;
  }
}
const strongest = new Map<number, Set<number>>();
for (const item of cold) {
  const co = new Map<number, number>();
  const own = buyers.get(item) as Set<number>;
  for (const user of own) {
    for (const other of itemsOfUser.get(user) ?? []) {
      if (hidden.has(other)) continue;
      const t = trainedOf[other] as number;
      co.set(t, (co.get(t) ?? 0) + 1);
    }
  }
  const ranked = [...co]
    .map(([t, n]) => ({ t, s: n / Math.sqrt(own.size * (buyersOfTrained[t] as number)) }))
    .sort((a, b) => b.s - a.s || a.t - b.t)
    .slice(0, K);
  strongest.set(item, new Set(ranked.map((r) => r.t)));
}
type Tally = { hits: number; precision: number };
const tally = (): Tally => ({ hits: 0, precision: 0 });
const truths = { sameInvoice: partners, strongestPartners: strongest };
const similar = Object.fromEntries(
  Object.keys(truths).map((truth) => [truth, { content: tally(), popularity: tally(), random: tally() }]),
) as Record<keyof typeof truths, Record<'content' | 'popularity' | 'random', Tally>>;
let similarItems = 0;
cold.forEach((item, c) => {
  if ((partners.get(item) as Set<number>).size === 0) return;
  similarItems++;
  const vector = coldVectors[c];
  let byContent: number[] = [];
  if (vector) {
    let qn = 0;
    for (let k = 0; k < f; k++) qn += (vector[k] as number) ** 2;
    qn = Math.sqrt(qn) || 1;
    const cosine = (t: number) => {
      let dot = 0;
      for (let k = 0; k < f; k++) dot += (vector[k] as number) * (model.itemFactors[t * f + k] as number);
      return dot / (qn * (norms[t] as number));
    };
    byContent = topBy(cosine, K);
  }
  const randomTen = new Set<number>();
  while (randomTen.size < K) randomTen.add(Math.floor(random() * trained.length));
  for (const [name, truthOf] of Object.entries(truths) as [keyof typeof truths, Map<number, Set<number>>][]) {
    const truth = truthOf.get(item) as Set<number>;
    const score = (list: number[], into: Tally) => {
      const found = list.filter((t) => truth.has(t)).length;
      if (found > 0) into.hits++;
      into.precision += found / K;
    };
    score(byContent, similar[name].content);
    score(popular, similar[name].popularity);
    score([...randomTen], similar[name].random);
  }
});

// Lists: each buyer's top K (and 50) of all products by their ALS vector, cold ones with a vector each.
const mean = new Float32Array(f);
for (let t = 0; t < trained.length; t++)
  for (let k = 0; k < f; k++) mean[k] = (mean[k] as number) + (model.itemFactors[t * f + k] as number) / trained.length;
// What the content vector was before it was stretched: the plain weighted average of its neighbours' factors.
const averaged = cold.map((item) =>
  vectorFromNeighbours(model.itemFactors, f, contentNeighbours(mapping, { name: descriptionOf(item) })),
);
const variants: Record<string, (Float32Array | undefined)[]> = {
  content: coldVectors,
  contentAverageUnstretched: averaged,
  randomTrainedVector: cold.map(() => {
    const t = Math.floor(random() * trained.length);
    return model.itemFactors.slice(t * f, (t + 1) * f);
  }),
  meanVector: cold.map(() => mean),
};
const coldBuyers = new Map<number, number[]>(); // user → cold indices they bought
cold.forEach((item, c) => {
  for (const user of buyers.get(item) ?? []) {
    if ((history.indptr[user + 1] as number) === (history.indptr[user] as number)) continue;
    let bought = coldBuyers.get(user);
    if (!bought) {
      bought = [];
      coldBuyers.set(user, bought);
    }
    bought.push(c);
  }
});
const lists: Record<string, { hits10: number; hits50: number; itemsShown: number; coldSlots: number; lists: number }> =
  {};
let pairs = 0;
for (const [name, vectors] of Object.entries(variants)) {
  const result = { hits10: 0, hits50: 0, itemsShown: 0, coldSlots: 0, lists: 0 };
  const shownAt10 = new Set<number>();
  const scores = new Float32Array(trained.length + cold.length);
  pairs = 0;
  for (const [user, bought] of coldBuyers) {
    const q = model.userFactors.subarray(user * f, (user + 1) * f);
    for (let t = 0; t < trained.length; t++) {
      let dot = 0;
      for (let k = 0; k < f; k++) dot += (q[k] as number) * (model.itemFactors[t * f + k] as number);
      scores[t] = dot;
    }
    for (let e = history.indptr[user] as number; e < (history.indptr[user + 1] as number); e++)
      scores[history.indices[e] as number] = Number.NEGATIVE_INFINITY;
    vectors.forEach((v, c) => {
      let dot = Number.NEGATIVE_INFINITY;
      if (v) {
        dot = 0;
        for (let k = 0; k < f; k++) dot += (q[k] as number) * (v[k] as number);
      }
      scores[trained.length + c] = dot;
    });
    // How much of this buyer's top 10 cold products take (10 % of the catalogue is cold).
    let threshold = Number.NEGATIVE_INFINITY;
    const top: number[] = [];
    for (let i = 0; i < scores.length; i++) {
      const v = scores[i] as number;
      if (top.length < K || v > threshold) {
        top.push(i);
        top.sort((a, b) => (scores[b] as number) - (scores[a] as number));
        if (top.length > K) top.pop();
        threshold = scores[top[top.length - 1] as number] as number;
      }
    }
    result.coldSlots += top.filter((i) => i >= trained.length).length;
    result.lists++;
    for (const c of bought) {
      pairs++;
      const own = scores[trained.length + c] as number;
      if (own === Number.NEGATIVE_INFINITY) continue;
      let above = 0;
      for (let i = 0; i < scores.length && above < 50; i++) if ((scores[i] as number) > own) above++;
      if (above < K) {
        result.hits10++;
        shownAt10.add(c);
      }
      if (above < 50) result.hits50++;
    }
  }
  result.itemsShown = shownAt10.size;
  lists[name] = result;
}

const rate = (n: number, d: number) => Math.round((1e4 * n) / Math.max(1, d)) / 1e4;
writeResults('cold', {
  command: 'npm run bench -- cold',
  data: { purchases: rows.length, customers: users, products: items, hiddenShare: share, seed: Number(values.seed) },
  model: { family: 'als', params, trainedProducts: trained.length, trainSeconds: Math.round(alsSeconds * 10) / 10 },
  content: {
    fields: 'description (Online Retail II has no category or attributes)',
    fitMs: Math.round(fitMs),
    perColdItemMs: Math.round(perItemMs * 1000) / 1000,
    coldProducts: cold.length,
    withVector,
  },
  similarItems: {
    measuredOn: similarItems,
    truths: {
      sameInvoice: 'any trained product bought in the same invoice as the cold product',
      strongestPartners: "the cold product's 10 trained partners with the highest cosine of buyer sets",
    },
    hitRate10: Object.fromEntries(
      Object.entries(similar).map(([truth, r]) => [
        truth,
        Object.fromEntries(Object.entries(r).map(([name, t]) => [name, rate(t.hits, similarItems)])),
      ]),
    ),
    precision10: Object.fromEntries(
      Object.entries(similar).map(([truth, r]) => [
        truth,
        Object.fromEntries(Object.entries(r).map(([name, t]) => [name, rate(t.precision, similarItems)])),
      ]),
    ),
  },
  lists: {
    measuredOn: pairs,
    truth: '(customer, cold product) pairs of the hidden purchases, customers with a training history',
    hitRate10: Object.fromEntries(Object.entries(lists).map(([name, r]) => [name, rate(r.hits10, pairs)])),
    hitRate50: Object.fromEntries(Object.entries(lists).map(([name, r]) => [name, rate(r.hits50, pairs)])),
    coldProductsShownInSomeTop10: Object.fromEntries(Object.entries(lists).map(([name, r]) => [name, r.itemsShown])),
    coldShareOfTop10Slots: Object.fromEntries(
      Object.entries(lists).map(([name, r]) => [name, rate(r.coldSlots, r.lists * K)]),
    ),
    popularity: 0,
  },
});
