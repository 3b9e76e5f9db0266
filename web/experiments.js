// The experiments page: lists experiments, polls experimentResults (admin-only, like everything the dashboard
// reads) and plots each variant's cumulative purchase conversion with its 95 % interval. No framework, no
// build step: uPlot comes from /dashboard/uplot.min.js as window.uPlot.

const { uPlot } = window;
const POLL_MS = 5000;
const COLOURS = [
  '#2457c5',
  '#d9480f',
  '#0a7a35',
  '#8e44ad',
  '#b8860b',
  '#c2185b',
  '#00838f',
  '#5d4037',
  '#455a64',
  '#7cb342',
];

const $ = (id) => document.getElementById(id);

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

const apiKeyInput = $('api-key');
apiKeyInput.value = sessionStorage.getItem('pgw-api-key') ?? '';
apiKeyInput.addEventListener('change', () => {
  sessionStorage.setItem('pgw-api-key', apiKeyInput.value.trim());
  void refreshList();
});

async function graphql(query, variables) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  const key = sessionStorage.getItem('pgw-api-key');
  if (key) headers.authorization = `Bearer ${key}`;
  const response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  if (body.errors?.length) throw new Error(body.errors.map((error) => error.message).join('; '));
  return body.data;
}

const LIST = '{ experiments { id placement phase running } }';
const RESULTS = `query($id: ID!, $phase: Int) {
  experimentResults(id: $id, phase: $phase) {
    phase from to attributionWindowHours
    experiment { id placement trafficShare phase running }
    srm { chiSquare pValue flagged }
    variants {
      name weight control shoppers lists clickThroughRate addToCartRate purchaseRate revenuePerShopper
      versusControl {
        purchaseRate { estimate low high pValue significant }
        revenuePerShopper { estimate low high pValue significant }
      }
    }
    series { variant points { at shoppers buyers rate low high } }
  }
}`;

const percent = (value) => `${(100 * value).toFixed(2)} %`;
const money = (value) => value.toFixed(2);

function difference(diff, format) {
  if (!diff) return el('td', { class: 'num' }, '—');
  const text = `${diff.estimate >= 0 ? '+' : ''}${format(diff.estimate)} [${format(diff.low)}, ${format(diff.high)}]`;
  const classes = ['num'];
  if (diff.significant) classes.push('significant', ...(diff.estimate < 0 ? ['worse'] : []));
  return el('td', { class: classes.join(' '), title: `p = ${diff.pValue.toPrecision(3)}` }, text);
}

let chart;
/** Plots the series over the phase, from its start to its end (or now). */
function plot(series, from, to) {
  // One x axis for all variants: the union of their bucket ends.
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => Date.parse(p.at) / 1000)))].sort((a, b) => a - b);
  const columns = [times];
  const lines = [];
  series.forEach((s, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const at = new Map(s.points.map((p) => [Date.parse(p.at) / 1000, p]));
    // Cumulative: a bucket without new shoppers keeps the last value.
    let last = null;
    const values = times.map((t) => {
      last = at.get(t) ?? last;
      return last;
    });
    columns.push(
      values.map((p) => p && 100 * p.rate),
      values.map((p) => p && 100 * p.low),
      values.map((p) => p && 100 * p.high),
    );
    lines.push(
      { label: s.variant, stroke: colour, width: 2, value: (_u, v) => (v == null ? '—' : `${v.toFixed(2)} %`) },
      { label: `${s.variant} low`, stroke: colour, width: 1, dash: [4, 4], show: true },
      { label: `${s.variant} high`, stroke: colour, width: 1, dash: [4, 4], show: true },
    );
  });
  chart?.destroy();
  const container = $('chart');
  chart = new uPlot(
    {
      width: container.clientWidth,
      height: 300,
      scales: {
        // The whole phase, so a young phase with one bucket still reads as a time axis.
        x: { time: true, range: () => [from, Math.max(to, times.at(-1) ?? to)] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      },
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => `${t} %`) }],
      series: [{}, ...lines.map((line) => ({ points: { show: true }, ...line }))],
    },
    columns,
    container,
  );
}

function render(results) {
  const { experiment, srm, variants } = results;
  const state = experiment.running ? 'running' : 'stopped';
  $('summary').replaceChildren(
    `${experiment.placement ? `placement ${experiment.placement}` : 'every list'}, ${percent(experiment.trafficShare)} of shoppers, phase ${results.phase} of ${experiment.phase}, ${state}; conversions: purchases within ${results.attributionWindowHours} h of a click. `,
    el(
      'span',
      { class: `badge ${srm.flagged ? 'bad' : 'ok'}`, title: `chi-square ${srm.chiSquare.toFixed(2)}` },
      srm.flagged
        ? `sample ratio mismatch (p = ${srm.pValue.toExponential(1)}): do not trust these results`
        : `sample ratio ok (p = ${srm.pValue.toFixed(3)})`,
    ),
  );
  $('stop').disabled = !experiment.running;
  $('variants').replaceChildren(
    ...variants.map((v) =>
      el(
        'tr',
        {},
        el('td', {}, v.control ? `${v.name} (control)` : v.name),
        el('td', { class: 'num' }, String(v.weight)),
        el('td', { class: 'num' }, String(v.shoppers)),
        el('td', { class: 'num' }, String(v.lists)),
        el('td', { class: 'num' }, percent(v.clickThroughRate)),
        el('td', { class: 'num' }, percent(v.addToCartRate)),
        el('td', { class: 'num' }, percent(v.purchaseRate)),
        el('td', { class: 'num' }, money(v.revenuePerShopper)),
        difference(v.versusControl?.purchaseRate, percent),
        difference(v.versusControl?.revenuePerShopper, money),
      ),
    ),
  );
  plot(results.series, Date.parse(results.from) / 1000, (results.to ? Date.parse(results.to) : Date.now()) / 1000);
}

async function refreshList() {
  try {
    const { experiments } = await graphql(LIST);
    const select = $('experiment');
    const chosen = select.value || new URLSearchParams(location.search).get('id') || experiments[0]?.id || '';
    select.replaceChildren(
      ...experiments.map((e) => el('option', { value: e.id }, `${e.id}${e.running ? '' : ' (stopped)'}`)),
    );
    select.value = chosen;
    const phases = experiments.find((e) => e.id === chosen)?.phase ?? 0;
    const phase = $('phase');
    const kept = phase.value;
    phase.replaceChildren(
      ...Array.from({ length: phases }, (_, i) => el('option', { value: String(i + 1) }, String(i + 1))),
    );
    phase.value = kept && Number(kept) <= phases ? kept : String(phases);
    if (experiments.length === 0) showStatus('no experiments yet: start one with upsertExperiment in GraphiQL');
  } catch (error) {
    showStatus(`cannot list experiments: ${error.message}`, true);
  }
}

async function refreshResults() {
  const id = $('experiment').value;
  if (!id) return;
  try {
    const { experimentResults } = await graphql(RESULTS, { id, phase: Number($('phase').value) || null });
    render(experimentResults);
    showStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    showStatus(`cannot read results: ${error.message}`, true);
  }
}

$('experiment').addEventListener('change', () => {
  $('phase').value = '';
  void refreshList().then(refreshResults);
});
$('phase').addEventListener('change', () => void refreshResults());
$('stop').addEventListener('click', async () => {
  const id = $('experiment').value;
  if (!id || !confirm(`Stop experiment ${id}? Its lists will serve as without it.`)) return;
  try {
    await graphql('mutation($id: ID!) { stopExperiment(id: $id) { id } }', { id });
    await refreshList();
    await refreshResults();
  } catch (error) {
    showStatus(`cannot stop: ${error.message}`, true);
  }
});
new ResizeObserver(() => chart?.setSize({ width: $('chart').clientWidth, height: 300 })).observe($('chart'));

await refreshList();
await refreshResults();
setInterval(async () => {
  await refreshList();
  await refreshResults();
}, POLL_MS);
