/** One line of a scrape: a series (name and labels) and its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A cumulative histogram bucket: how many observations were at most `le`. */
export interface Bucket {
  le: number;
  count: number;
}

export function parsePrometheusText(text: string): Sample[];
export function sumOf(samples: Sample[], name: string, match?: Record<string, string>): number | undefined;
export function bucketsOf(samples: Sample[], name: string, match?: Record<string, string>): Bucket[] | undefined;
export function ratePerSecond(
  before: number | undefined,
  after: number | undefined,
  seconds: number,
): number | undefined;
export function bucketIncrease(before: Bucket[] | undefined, after: Bucket[] | undefined): Bucket[] | undefined;
export function histogramQuantile(q: number, buckets: Bucket[] | undefined): number | undefined;
