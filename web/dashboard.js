// The operations dashboard: polls the gateway's /metrics (Prometheus text) and turns consecutive scrapes into
// rates and latency percentiles, and reads model versions and trending items over GraphQL. No framework, no
// build step: uPlot comes from /dashboard/uplot.min.js as window.uPlot.
// Will be admin-only once the gateway has access control (see src/http/rest-routes.ts).
import {
  bucketIncrease,
  bucketsOf,
  histogramQuantile,
  parsePrometheusText,
  ratePerSecond,
  sumOf,
} from './prometheus-text.js';

const { uPlot } = window;

const SCRAPE_MS = 2000;
const MODELS_MS = 30_000;
const TRENDING_MS = 5000;
/** How far back the ingest and freshness charts reach. */
const HISTORY_SECONDS = 600;
/** Freshness percentiles cover the pushes of this many last seconds, so a quiet 2 s does not blank them. */
const FRESHNESS_WINDOW_SECONDS = 10;
const OUTCOMES = ['accepted', 'duplicate', 'rejected'];
const LATENCY = 'pgw_event_push_latency_seconds';

const $ = (id) => document.getElementById(id);

/** A DOM element with text or child nodes; text is never parsed as HTML. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function showStatus(text, problem = false) {
  $('status').textContent = text;
  $('status').classList.toggle('problem', problem);
}

/** Sets a tile to a formatted value, or to "no data" when the gateway does not export it. */
function showTile(id, value, format) {
  const tile = $(id);
  tile.textContent = value === undefined ? 'no data' : format(value);
  tile.classList.toggle('none', value === undefined);
}

const perSecond = (value) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const milliseconds = (seconds) => `${(seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0)} ms`;

// Once the gateway has API keys, its GraphQL needs one: an admin key typed here lives in this tab only.
const apiKeyInput = document.getElementById('api-key');
apiKeyInput.value = sessionStorage.getItem('pgw-api-key') ?? '';
apiKeyInput.addEventListener('change', () => sessionStorage.setItem('pgw-api-key', apiKeyInput.value.trim()));

async function graphql(query, variables) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  const key = sessionStorage.getItem('pgw-api-key');
  if (key) headers.authorization = `Bearer ${key}`;
  const response = await fetch('/graphql', {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new Error(body.errors.map((error) => error.message).join('; '));
  return body.data;
}

/** A uPlot chart filling its card, resized with it, with a "no data" veil while it has nothing to show. */
function makeChart(container, options, series, x = {}) {
  const chart = new uPlot(
    {
      width: container.clientWidth,
      height: 250,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      ...options,
      series: [x, ...series.map((s) => ({ width: 2, spanGaps: false, ...s }))],
    },
    [[], ...series.map(() => [])],
    container,
  );
  new ResizeObserver(() => chart.setSize({ width: container.clientWidth, height: 250 })).observe(container);
  const veil = container.querySelector('.empty');
  return {
    chart,
    setData(data) {
      chart.setData(data);
      veil.hidden = data.slice(1).some((values) => values.some((v) => v !== null && v !== undefined));
    },
  };
}

const ingestChart = makeChart(
  $('ingest-chart'),
  { scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } } },
  [
    { label: 'accepted', stroke: '#0a7a35', value: (_u, v) => (v == null ? '–' : perSecond(v)) },
    { label: 'duplicate', stroke: '#c98a00', value: (_u, v) => (v == null ? '–' : perSecond(v)) },
    { label: 'rejected', stroke: '#b3261e', value: (_u, v) => (v == null ? '–' : perSecond(v)) },
  ],
);

const freshnessChart = makeChart(
  $('freshness-chart'),
  { scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } } },
  [
    { label: 'p50 ms', stroke: '#2457c5', value: (_u, v) => (v == null ? '–' : v.toFixed(1)) },
    { label: 'p99 ms', stroke: '#8e3fc4', value: (_u, v) => (v == null ? '–' : v.toFixed(1)) },
  ],
);

const modelChart = makeChart(
  $('model-chart'),
  {
    // From 0, so versions compare by height; metrics on small catalogues are far below 1.
    scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, max > 0 ? Math.min(1, max * 1.2) : 1] } },
    axes: [
      // A tick per plotted version, not per integer: failed versions leave gaps in the ids.
      { splits: (u) => [...u.data[0]], values: (_u, splits) => splits.map((v) => `v${v}`), label: 'model version' },
      {},
    ],
  },
  [
    { label: 'NDCG@10', stroke: '#2457c5', points: { size: 7 } },
    { label: 'recall@10', stroke: '#0a7a35', points: { size: 7 } },
    { label: 'coverage', stroke: '#d9730d', points: { size: 7 } },
  ],
  { label: 'version', value: (_u, v) => (v == null ? '–' : `v${v}`) },
);

// ---- live metrics from /metrics ----

/** Scrapes of the last FRESHNESS_WINDOW_SECONDS (and one more), oldest first. */
const scrapes = [];
/** What the ingest and freshness charts show: time (s), then one column per series. */
const history = { time: [], accepted: [], duplicate: [], rejected: [], p50: [], p99: [] };

async function scrape() {
  let samples = [];
  try {
    const response = await fetch('/metrics', { headers: { accept: 'text/plain' } });
    if (response.ok) {
      samples = parsePrometheusText(await response.text());
      showStatus(`live · updated ${new Date().toLocaleTimeString()}`);
    } else {
      showStatus(`/metrics answered ${response.status}`, true);
    }
  } catch {
    showStatus('gateway unreachable', true);
  }
  const now = { at: Date.now() / 1000, samples };
  const previous = scrapes.at(-1);
  scrapes.push(now);
  while (scrapes.length > 2 && scrapes[1].at <= now.at - FRESHNESS_WINDOW_SECONDS) scrapes.shift();
  const since = (name, match) =>
    previous
      ? ratePerSecond(sumOf(previous.samples, name, match), sumOf(samples, name, match), now.at - previous.at)
      : undefined;

  const rates = Object.fromEntries(OUTCOMES.map((outcome) => [outcome, since('pgw_events_total', { outcome })]));
  const base = scrapes[0] === now ? undefined : scrapes[0];
  const pushed = base ? bucketIncrease(bucketsOf(base.samples, LATENCY), bucketsOf(samples, LATENCY)) : undefined;
  const p50 = histogramQuantile(0.5, pushed);
  const p99 = histogramQuantile(0.99, pushed);

  history.time.push(now.at);
  for (const outcome of OUTCOMES) history[outcome].push(rates[outcome] ?? null);
  history.p50.push(p50 === undefined ? null : p50 * 1000);
  history.p99.push(p99 === undefined ? null : p99 * 1000);
  while (history.time[0] < now.at - HISTORY_SECONDS) for (const column of Object.values(history)) column.shift();
  ingestChart.setData([history.time, history.accepted, history.duplicate, history.rejected]);
  freshnessChart.setData([history.time, history.p50, history.p99]);

  showTile('tile-ingest', rates.accepted, perSecond);
  showTile('tile-p50', p50, milliseconds);
  showTile('tile-p99', p99, milliseconds);
  showTile('tile-queue', sumOf(samples, 'pgw_queue_waiting_jobs', { queue: 'events' }), String);
  const oldest = sumOf(samples, 'pgw_queue_oldest_waiting_seconds', { queue: 'events' });
  $('tile-queue-oldest').textContent = oldest === undefined ? 'jobs waiting' : `oldest waits ${oldest.toFixed(1)} s`;
  showTile('tile-train', sumOf(samples, 'pgw_queue_waiting_jobs', { queue: 'train' }), String);
  showTile('tile-subscriptions', sumOf(samples, 'pgw_subscriptions_open'), String);
  const pushes = since('pgw_pushes_total');
  $('tile-pushes').textContent = pushes === undefined ? 'pushes/s: no data' : `${perSecond(pushes)} pushes/s`;
  showTile('tile-model', sumOf(samples, 'pgw_model_version_serving'), (v) => (v > 0 ? `v${v}` : 'none'));
}

// ---- model versions and trending over GraphQL ----

const fixed = (value, digits) => (typeof value === 'number' ? value.toFixed(digits) : '');

function cell(text, className = 'num') {
  return el('td', { class: text === '' ? `${className} none` : className }, text === '' ? '–' : text);
}

async function loadModels() {
  const message = $('versions-message');
  try {
    const { modelVersions } = await graphql(
      '{ modelVersions(first: 50) { id status algorithm metrics timings createdAt activatedAt current } }',
    );
    const rows = modelVersions.map((v) => {
      const m = v.metrics ?? {};
      const t = v.timings ?? {};
      const status = el('td', {}, el('span', { class: `badge ${v.status}` }, v.status));
      if (v.current) status.append(' ', el('span', { class: 'badge serving' }, 'serving'));
      return el(
        'tr',
        v.current ? { class: 'serving' } : {},
        el('td', {}, `v${v.id}`),
        status,
        el('td', {}, v.algorithm),
        el('td', { title: v.createdAt }, new Date(v.createdAt).toLocaleString()),
        cell(fixed(m['ndcg@10'], 4)),
        cell(fixed(m['recall@10'], 4)),
        cell(fixed(m['precision@10'], 4)),
        cell(fixed(m.coverage, 3)),
        cell(typeof m.users === 'number' ? String(m.users) : ''),
        cell(fixed(t.readSeconds, 2)),
        cell(fixed(t.holdoutSeconds, 2)),
        cell(fixed(t.trainSeconds, 2)),
        cell(fixed(t.indexSeconds, 2)),
      );
    });
    $('versions').replaceChildren(...rows);
    message.textContent = rows.length ? '' : 'no model trained yet';

    const plotted = modelVersions.filter((v) => v.status === 'READY' && v.metrics).sort((a, b) => a.id - b.id);
    const metric = (key) => plotted.map((v) => (typeof v.metrics[key] === 'number' ? v.metrics[key] : null));
    modelChart.setData([plotted.map((v) => v.id), metric('ndcg@10'), metric('recall@10'), metric('coverage')]);
    $('model-chart').dataset.versions = String(plotted.length);
  } catch (error) {
    message.textContent = `model versions unavailable: ${error.message}`;
  }
}

async function loadTrending() {
  const message = $('trending-message');
  try {
    const { trending } = await graphql('{ trending(k: 10) { score item { id name price } } }');
    const rows = trending.map(({ score, item }, i) =>
      el(
        'tr',
        {},
        el('td', {}, String(i + 1)),
        el('td', {}, item.id),
        el('td', {}, item.name),
        cell(item.price ?? ''),
        el('td', {}, el('span', { class: 'bar', style: `width:${Math.round(score * 80)}px` }), score.toFixed(3)),
      ),
    );
    $('trending').replaceChildren(...rows);
    message.textContent = rows.length ? '' : 'nothing trending yet: no events processed';
  } catch (error) {
    message.textContent = `trending unavailable: ${error.message}`;
  }
}

/** Runs `task` now and then every `ms` after it finishes, skipping while the tab is hidden. */
function every(ms, task) {
  const run = async () => {
    try {
      if (!document.hidden) await task();
    } finally {
      setTimeout(run, ms);
    }
  };
  void run();
}

every(SCRAPE_MS, scrape);
every(MODELS_MS, loadModels);
every(TRENDING_MS, loadTrending);
