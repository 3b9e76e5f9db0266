// The dashboard's arithmetic on Prometheus' text exposition format, kept free of the DOM so vitest can run
// it: parse a scrape, pick series by labels, and turn two scrapes into rates and histogram quantiles the way
// PromQL's rate() and histogram_quantile() do. Types: prometheus-text.d.ts.

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;
const UNESCAPE = { '\\\\': '\\', '\\"': '"', '\\n': '\n' };

/**
 * The samples of a scrape, in order; comments, blank lines and malformed lines are skipped.
 * @param {string} text
 * @returns {import('./prometheus-text.js').Sample[]}
 */
export function parsePrometheusText(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const [, name, labelText = '', valueText] = match;
    const labels = parseLabels(labelText);
    const value = parseValue(valueText);
    if (labels && value !== undefined) samples.push({ name, labels, value });
  }
  return samples;
}

/** @param {string} text */
function parseLabels(text) {
  /** @type {Record<string, string>} */
  const labels = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const start = LABEL.lastIndex;
    const match = LABEL.exec(text);
    if (!match) return text.slice(start).trim() === '' ? labels : undefined;
    labels[match[1]] = match[2].replace(/\\[\\"n]/g, (sequence) => UNESCAPE[sequence]);
  }
  return labels;
}

/** @param {string} text */
function parseValue(text) {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}

/**
 * @param {import('./prometheus-text.js').Sample} sample
 * @param {Record<string, string>} match
 */
function matches(sample, match) {
  return Object.entries(match).every(([label, value]) => sample.labels[label] === value);
}

/**
 * The sum over the series called `name` whose labels include `match`; undefined when there is none, so a
 * metric the gateway does not export reads as "no data" rather than 0.
 * @param {import('./prometheus-text.js').Sample[]} samples
 * @param {string} name
 * @param {Record<string, string>} [match]
 * @returns {number | undefined}
 */
export function sumOf(samples, name, match = {}) {
  let sum;
  for (const sample of samples) {
    if (sample.name === name && matches(sample, match)) sum = (sum ?? 0) + sample.value;
  }
  return sum;
}

/**
 * The cumulative buckets of histogram `name` (its `_bucket` series summed per `le` over the other labels),
 * sorted by upper bound; undefined when it is not exported.
 * @param {import('./prometheus-text.js').Sample[]} samples
 * @param {string} name
 * @param {Record<string, string>} [match]
 * @returns {import('./prometheus-text.js').Bucket[] | undefined}
 */
export function bucketsOf(samples, name, match = {}) {
  /** @type {Map<number, number>} */
  const counts = new Map();
  for (const sample of samples) {
    if (sample.name !== `${name}_bucket` || !matches(sample, match)) continue;
    const le = parseValue(sample.labels.le ?? '');
    if (le === undefined || Number.isNaN(le)) continue;
    counts.set(le, (counts.get(le) ?? 0) + sample.value);
  }
  if (counts.size === 0) return undefined;
  return [...counts].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/**
 * Per-second increase of a counter between two scrapes `seconds` apart; a counter that went down was reset
 * (the gateway restarted), so its whole current value is the increase, as in PromQL's rate().
 * @param {number | undefined} before
 * @param {number | undefined} after
 * @param {number} seconds
 * @returns {number | undefined}
 */
export function ratePerSecond(before, after, seconds) {
  if (before === undefined || after === undefined || !(seconds > 0)) return undefined;
  return (after < before ? after : after - before) / seconds;
}

/**
 * The observations that fell in each bucket between two scrapes (still cumulative); on a reset, the later
 * scrape's own counts.
 * @param {import('./prometheus-text.js').Bucket[] | undefined} before
 * @param {import('./prometheus-text.js').Bucket[] | undefined} after
 * @returns {import('./prometheus-text.js').Bucket[] | undefined}
 */
export function bucketIncrease(before, after) {
  if (!before || !after) return undefined;
  const earlier = new Map(before.map(({ le, count }) => [le, count]));
  const increase = after.map(({ le, count }) => ({ le, count: count - (earlier.get(le) ?? 0) }));
  return increase.some(({ count }) => count < 0) ? after : increase;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of the observations in cumulative buckets, interpolating linearly within the
 * bucket it falls in, like PromQL's histogram_quantile(): the lowest bucket starts at 0, and a quantile in
 * the +Inf bucket is the highest finite bound. Undefined without observations or without a +Inf bucket.
 * @param {number} q
 * @param {import('./prometheus-text.js').Bucket[] | undefined} buckets
 * @returns {number | undefined}
 */
export function histogramQuantile(q, buckets) {
  const last = buckets?.at(-1);
  if (!buckets || !last || last.le !== Number.POSITIVE_INFINITY || !(last.count > 0)) return undefined;
  if (q < 0 || q > 1 || Number.isNaN(q)) return undefined;
  const rank = q * last.count;
  const index = buckets.findIndex(({ count }) => count >= rank);
  const bucket = buckets[index];
  if (index === buckets.length - 1) return buckets.length > 1 ? buckets[index - 1].le : undefined;
  if (index === 0 && bucket.le <= 0) return bucket.le;
  const lower = index === 0 ? 0 : buckets[index - 1].le;
  const below = index === 0 ? 0 : buckets[index - 1].count;
  const inBucket = bucket.count - below;
  return inBucket > 0 ? lower + (bucket.le - lower) * ((rank - below) / inBucket) : bucket.le;
}
