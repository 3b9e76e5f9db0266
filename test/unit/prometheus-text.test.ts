import { describe, expect, it } from 'vitest';
import {
  bucketIncrease,
  bucketsOf,
  histogramQuantile,
  parsePrometheusText,
  ratePerSecond,
  sumOf,
} from '../../web/prometheus-text.js';

const SCRAPE = `# HELP pgw_events_total Events received, by outcome.
# TYPE pgw_events_total counter
pgw_events_total{outcome="accepted",rule=""} 120
pgw_events_total{outcome="rejected",rule="maxLength"} 3
pgw_events_total{outcome="rejected",rule="required"} 2 1764630000000
pgw_subscriptions_open 7

# TYPE pgw_event_push_latency_seconds histogram
pgw_event_push_latency_seconds_bucket{le="0.005"} 10
pgw_event_push_latency_seconds_bucket{le="0.01"} 30
pgw_event_push_latency_seconds_bucket{le="0.05"} 90
pgw_event_push_latency_seconds_bucket{le="+Inf"} 100
pgw_event_push_latency_seconds_sum 2.5
pgw_event_push_latency_seconds_count 100
odd_label{path="C:\\\\temp \\"x\\"\\n",le="1"} NaN
not a sample line
`;

describe('parsePrometheusText', () => {
  it('when a scrape has comments, timestamps and escaped labels then every sample keeps its labels and value', () => {
    const samples = parsePrometheusText(SCRAPE);

    expect(samples).toHaveLength(11);
    expect(samples[0]).toEqual({ name: 'pgw_events_total', labels: { outcome: 'accepted', rule: '' }, value: 120 });
    expect(samples[2]).toEqual({
      name: 'pgw_events_total',
      labels: { outcome: 'rejected', rule: 'required' },
      value: 2,
    });
    expect(samples[3]).toEqual({ name: 'pgw_subscriptions_open', labels: {}, value: 7 });
    expect(samples[7]?.labels.le).toBe('+Inf');
    expect(samples[10]?.labels).toEqual({ path: 'C:\\temp "x"\n', le: '1' });
    expect(samples[10]?.value).toBeNaN();
  });
});

describe('sumOf and bucketsOf', () => {
  it('when series match the labels then their values add up, and a missing metric is undefined', () => {
    const samples = parsePrometheusText(SCRAPE);

    expect(sumOf(samples, 'pgw_events_total', { outcome: 'rejected' })).toBe(5);
    expect(sumOf(samples, 'pgw_events_total')).toBe(125);
    expect(sumOf(samples, 'pgw_events_total', { outcome: 'duplicate' })).toBeUndefined();
    expect(sumOf(samples, 'pgw_queue_waiting_jobs')).toBeUndefined();
  });

  it('when a histogram is split by another label then its buckets are summed per bound and sorted', () => {
    const samples = parsePrometheusText(`h_bucket{le="+Inf",trigger="a"} 4
h_bucket{le="0.1",trigger="a"} 1
h_bucket{le="0.1",trigger="b"} 2
h_bucket{le="+Inf",trigger="b"} 2`);

    expect(bucketsOf(samples, 'h')).toEqual([
      { le: 0.1, count: 3 },
      { le: Number.POSITIVE_INFINITY, count: 6 },
    ]);
    expect(bucketsOf(samples, 'missing')).toBeUndefined();
  });
});

describe('ratePerSecond', () => {
  it('when a counter grows then the rate is the increase per second', () => {
    expect(ratePerSecond(100, 120, 2)).toBe(10);
  });

  it('when a counter went down then it was reset and its current value is the increase', () => {
    expect(ratePerSecond(500, 6, 2)).toBe(3);
  });

  it('when either scrape lacks the counter then there is no rate', () => {
    expect(ratePerSecond(undefined, 5, 2)).toBeUndefined();
    expect(ratePerSecond(5, undefined, 2)).toBeUndefined();
  });
});

describe('histogramQuantile', () => {
  const buckets = bucketsOf(parsePrometheusText(SCRAPE), 'pgw_event_push_latency_seconds');

  it('when the quantile falls inside a bucket then it interpolates linearly between its bounds', () => {
    // p50: rank 50 lies in (0.01, 0.05], 20 of that bucket's 60 observations in.
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.01 + 0.04 * (20 / 60), 12);
    // p5: rank 5 in the first bucket, which starts at 0.
    expect(histogramQuantile(0.05, buckets)).toBeCloseTo(0.0025, 12);
  });

  it('when the quantile falls in the +Inf bucket then it is the highest finite bound', () => {
    expect(histogramQuantile(0.99, buckets)).toBe(0.05);
  });

  it('when there are no observations or no +Inf bucket then there is no quantile', () => {
    expect(histogramQuantile(0.5, [{ le: Number.POSITIVE_INFINITY, count: 0 }])).toBeUndefined();
    expect(histogramQuantile(0.5, [{ le: 1, count: 4 }])).toBeUndefined();
    expect(histogramQuantile(0.5, undefined)).toBeUndefined();
  });

  it('when two scrapes are compared then the quantile covers only the observations between them', () => {
    const before = [
      { le: 0.01, count: 100 },
      { le: 0.1, count: 100 },
      { le: Number.POSITIVE_INFINITY, count: 100 },
    ];
    const after = [
      { le: 0.01, count: 100 },
      { le: 0.1, count: 110 },
      { le: Number.POSITIVE_INFINITY, count: 110 },
    ];

    const increase = bucketIncrease(before, after);

    expect(increase?.map((b) => b.count)).toEqual([0, 10, 10]);
    expect(histogramQuantile(0.5, increase)).toBeCloseTo(0.055, 12);
  });

  it('when a histogram was reset between scrapes then the later counts are the increase', () => {
    const before = [{ le: Number.POSITIVE_INFINITY, count: 50 }];
    const after = [{ le: Number.POSITIVE_INFINITY, count: 4 }];

    expect(bucketIncrease(before, after)).toEqual(after);
  });
});
