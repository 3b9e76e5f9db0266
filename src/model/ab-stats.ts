// The statistics of an A/B test: the normal, Student t and chi-square distributions, a two-proportion z-test,
// Welch's t-test and the sample-ratio-mismatch check. Hand-written because no statistics package is installed
// (and this needs four classic functions, not a library): the special functions follow Numerical Recipes
// (Lanczos log-gamma, the incomplete gamma and beta functions by series and continued fraction) and are
// checked against published tables in test/unit/ab-stats.test.ts.

/** The 97.5 % quantile of the standard normal: a 95 % two-sided interval is ±Z95 standard errors. */
export const Z95 = 1.959963984540054;

const LANCZOS = [
  76.18009172947146, -86.50532032941678, 24.01409824083091, -1.231739572450155, 0.1208650973866179e-2,
  -0.5395239384953e-5,
];

/** ln Γ(x) for x > 0 (Lanczos, relative error below 2e-10). */
export function logGamma(x: number): number {
  let y = x;
  const tmp = x + 5.5 - (x + 0.5) * Math.log(x + 5.5);
  let series = 1.000000000190015;
  for (const c of LANCZOS) series += c / ++y;
  return -tmp + Math.log((2.5066282746310007 * series) / x);
}

const EPSILON = 1e-15;
const TINY = 1e-300;
const MAX_ITERATIONS = 500;

/** The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const front = Math.exp(-x + a * Math.log(x) - logGamma(a));
  if (x < a + 1) {
    // The series for P(a, x) converges fast here.
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < MAX_ITERATIONS; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * EPSILON) break;
    }
    return Math.max(0, 1 - sum * front);
  }
  // Lentz's continued fraction for Q(a, x).
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPSILON) break;
  }
  return front * h;
}

/** P(X ≥ x) for X chi-square with `df` degrees of freedom. */
export function chiSquareSurvival(x: number, df: number): number {
  return gammaQ(df / 2, x / 2);
}

/** The complementary error function (Numerical Recipes' Chebyshev fit, fractional error below 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Φ(x), the standard normal CDF. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** Two-sided p-value of a standard normal statistic. */
export function normalTwoSided(z: number): number {
  return Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
}

/** The continued fraction of the incomplete beta function (modified Lentz). */
function betaFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < MAX_ITERATIONS; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPSILON) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function betaIncomplete(a: number, b: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(a, b, x)) / a : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** Two-sided p-value of Student's t with `df` degrees of freedom. */
export function tTwoSided(t: number, df: number): number {
  if (!Number.isFinite(df) || df > 1e7) return normalTwoSided(t);
  return betaIncomplete(df / 2, 0.5, df / (df + t * t));
}

/** The 97.5 % quantile of Student's t (bisection on `tTwoSided`; 1.96 for infinite df). */
export function t975(df: number): number {
  if (!Number.isFinite(df) || df > 1e7) return Z95;
  let low = Z95;
  let high = 1000;
  for (let i = 0; i < 100 && high - low > 1e-10; i++) {
    const mid = (low + high) / 2;
    if (tTwoSided(mid, df) > 0.05) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

/** A treatment's difference from the control with its 95 % interval and two-sided p-value. */
export interface Difference {
  /** Treatment minus control. */
  estimate: number;
  low: number;
  high: number;
  pValue: number;
  /** Whether the interval excludes zero (p < 0.05). */
  significant: boolean;
}

/**
 * Two-proportion z-test of `x2/n2` (treatment) against `x1/n1` (control): the p-value uses the pooled
 * proportion (the null: both rates equal), the interval the unpooled standard error. Assumes independent
 * units (one per shopper) and enough of each outcome for the normal approximation (roughly 5 or more).
 * Null when a side has no units.
 */
export function twoProportion(x1: number, n1: number, x2: number, n2: number): Difference | null {
  if (n1 <= 0 || n2 <= 0) return null;
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const estimate = p2 - p1;
  const pooled = (x1 + x2) / (n1 + n2);
  const sePooled = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  const se = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  const pValue = sePooled === 0 ? (estimate === 0 ? 1 : 0) : normalTwoSided(estimate / sePooled);
  return { estimate, low: estimate - Z95 * se, high: estimate + Z95 * se, pValue, significant: pValue < 0.05 };
}

/** A sample's size, mean and (unbiased) variance. */
export interface Moments {
  n: number;
  mean: number;
  variance: number;
}

/** Size, mean and unbiased variance from a count, a sum and a sum of squares. */
export function momentsOf(n: number, sum: number, sumOfSquares: number): Moments {
  const mean = n > 0 ? sum / n : 0;
  const variance = n > 1 ? Math.max(0, (sumOfSquares - n * mean * mean) / (n - 1)) : 0;
  return { n, mean, variance };
}

/**
 * Welch's t-test of the treatment's mean against the control's (unequal variances, Welch–Satterthwaite
 * degrees of freedom). Assumes independent units and a mean near normal, which the central limit theorem
 * gives per-shopper revenue only with many shoppers: a few large orders dominate small samples. Null with
 * fewer than two units on a side.
 */
export function welch(control: Moments, treatment: Moments): Difference | null {
  if (control.n < 2 || treatment.n < 2) return null;
  const v1 = control.variance / control.n;
  const v2 = treatment.variance / treatment.n;
  const estimate = treatment.mean - control.mean;
  const se = Math.sqrt(v1 + v2);
  if (se === 0) {
    const pValue = estimate === 0 ? 1 : 0;
    return { estimate, low: estimate, high: estimate, pValue, significant: pValue < 0.05 };
  }
  const df = (v1 + v2) ** 2 / (v1 ** 2 / (control.n - 1) + v2 ** 2 / (treatment.n - 1));
  const pValue = tTwoSided(estimate / se, df);
  const half = t975(df) * se;
  return { estimate, low: estimate - half, high: estimate + half, pValue, significant: pValue < 0.05 };
}

/** The sample-ratio-mismatch check's answer. */
export interface SampleRatio {
  chiSquare: number;
  degreesOfFreedom: number;
  pValue: number;
  /** p < SRM_ALPHA: the assignment (or its logging) is broken and the results are not to be trusted. */
  flagged: boolean;
}

/** Below this p-value the observed split is flagged: strict, since the check runs on every look. */
export const SRM_ALPHA = 0.001;

/**
 * Pearson's chi-square of the observed counts against the split the weights expect. Not flagged (p = 1)
 * without any units.
 */
export function sampleRatio(observed: readonly number[], weights: readonly number[]): SampleRatio {
  const total = observed.reduce((sum, count) => sum + count, 0);
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0);
  const degreesOfFreedom = Math.max(1, observed.length - 1);
  if (total === 0 || weightSum <= 0) return { chiSquare: 0, degreesOfFreedom, pValue: 1, flagged: false };
  let chiSquare = 0;
  observed.forEach((count, index) => {
    const expected = (total * (weights[index] ?? 0)) / weightSum;
    if (expected > 0) chiSquare += (count - expected) ** 2 / expected;
  });
  const pValue = chiSquareSurvival(chiSquare, degreesOfFreedom);
  return { chiSquare, degreesOfFreedom, pValue, flagged: pValue < SRM_ALPHA };
}

/** A proportion's 95 % interval (normal approximation, clamped to 0–1), for the plotted cumulative rates. */
export function proportionInterval(x: number, n: number): { rate: number; low: number; high: number } {
  if (n <= 0) return { rate: 0, low: 0, high: 0 };
  const rate = x / n;
  const half = Z95 * Math.sqrt((rate * (1 - rate)) / n);
  return { rate, low: Math.max(0, rate - half), high: Math.min(1, rate + half) };
}
