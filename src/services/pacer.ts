// The global `performance` has the DOM's type (tsconfig lib), which lacks eventLoopUtilization.
import { performance as nodePerformance } from 'node:perf_hooks';

/** Work the pacer runs: one watched list's pending recomputation. */
export interface PacedTask {
  run(): Promise<void>;
}

/** The share of wall time (0–1) the process was busy since the gauge was last read. */
export type BusyGauge = () => number;

/** The event loop's utilization (`performance.eventLoopUtilization`) between two readings. */
export function eventLoopGauge(): BusyGauge {
  let last = nodePerformance.eventLoopUtilization();
  return () => {
    const now = nodePerformance.eventLoopUtilization();
    const { utilization } = nodePerformance.eventLoopUtilization(now, last);
    last = now;
    return utilization;
  };
}

export interface PacerOptions {
  /** Tasks running at once. */
  concurrency: number;
  /** Most starts per second; 0 = no limit (and no adaptation). */
  maxRate?: number;
  /**
   * With it, the rate follows the process's load between `minRate` and `maxRate`: halved whenever the
   * gauge reads above `target` over a step, raised by an eighth of `maxRate` when it reads at or below.
   * Without it the rate stays at `maxRate`.
   */
  load?: { gauge: BusyGauge; target: number; minRate: number };
}

/** How often an adaptive rate is adjusted: long enough for a reading to average over several tasks. */
const ADJUST_MS = 250;

/**
 * Runs queued tasks in arrival order with at most `concurrency` in flight and, with a rate, no more starts
 * per second than that, so that a fan-out (a model activation recomputing every open list) spreads over time
 * instead of all ranking at once. The rate is what bounds the CPU share a fan-out takes: each recomputation
 * costs a roughly fixed CPU time, and with Redis round trips between their steps even a few tasks in flight
 * can otherwise take every cycle the freshness path needs. A task already waiting is not queued again: its
 * one run covers every request made meanwhile.
 *
 * A fixed rate only fits one machine and one load: what is a small share of an idle gateway's loop saturates
 * a busy one. With a load gauge the rate is adapted (additive increase, multiplicative decrease, as TCP does
 * for the same problem) so that a fan-out takes the loop's spare time and backs off to `minRate`, which still
 * finishes it, when shopper events keep the loop past `target`. Each fan-out after an idle pacer starts at
 * `minRate` and climbs while the loop has room. No library paces by event-loop load (rate limiters count
 * requests, p-queue counts time), hence this small class.
 */
export class Pacer {
  readonly #concurrency: number;
  readonly #maxRate: number;
  readonly #load: PacerOptions['load'];
  #rate: number;
  /** Token bucket of starts (a burst of `concurrency`), when a rate is set. */
  #tokens: number;
  #refilledAt = performance.now();
  /** When the adaptive rate was last adjusted; undefined while the pacer is idle (the next start reads afresh). */
  #adjustedAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Waiting tasks; a Set keeps arrival order and makes queuing twice a no-op. */
  readonly #waiting = new Set<PacedTask>();
  #inFlight = 0;
  #maxInFlight = 0;

  constructor(options: PacerOptions) {
    const { concurrency, maxRate = 0, load } = options;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be at least 1');
    if (!(maxRate >= 0)) throw new RangeError('maxRate must be 0 (no limit) or more');
    if (load && !(load.minRate > 0 && load.minRate <= maxRate)) {
      throw new RangeError('load.minRate must be above 0 and at most maxRate');
    }
    if (load && !(load.target > 0 && load.target <= 1)) throw new RangeError('load.target must be in (0, 1]');
    this.#concurrency = concurrency;
    this.#maxRate = maxRate;
    this.#load = maxRate > 0 ? load : undefined;
    this.#rate = this.#load?.minRate ?? maxRate;
    this.#tokens = concurrency;
  }

  /** Moves an adaptive rate by the loop's load since the last step. */
  #adjust(now: number): void {
    const load = this.#load;
    if (!load) return;
    if (this.#adjustedAt === undefined) {
      // The first start after an idle spell: read from now on, not over the idle time.
      load.gauge();
      this.#adjustedAt = now;
      return;
    }
    if (now - this.#adjustedAt < ADJUST_MS) return;
    this.#adjustedAt = now;
    this.#rate =
      load.gauge() > load.target
        ? Math.max(load.minRate, this.#rate / 2)
        : Math.min(this.#maxRate, this.#rate + this.#maxRate / 8);
  }

  /** Takes a start from the bucket; false (and a timer for the next token) when it is empty. */
  #takeStart(): boolean {
    if (this.#maxRate === 0) return true;
    const now = performance.now();
    this.#adjust(now);
    this.#tokens = Math.min(this.#concurrency, this.#tokens + ((now - this.#refilledAt) * this.#rate) / 1000);
    this.#refilledAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.#timer ??= setTimeout(
      () => {
        this.#timer = undefined;
        this.#pump();
      },
      Math.ceil(((1 - this.#tokens) * 1000) / this.#rate),
    );
    // Waiting lists must not keep a stopping process alive.
    this.#timer.unref();
    return false;
  }

  /** Queues the task unless it is waiting already; starts it at once when a slot is free. */
  schedule(task: PacedTask): void {
    this.#waiting.add(task);
    this.#pump();
  }

  /** Drops a waiting task (a closed subscription); a running one finishes. */
  cancel(task: PacedTask): void {
    this.#waiting.delete(task);
  }

  /** Tasks running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The most tasks that ever ran at once. */
  get maxInFlight(): number {
    return this.#maxInFlight;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Starts per second allowed now (0: no limit). */
  get rate(): number {
    return this.#rate;
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency) {
      const next = this.#waiting.values().next();
      if (next.done) {
        if (this.#inFlight === 0) this.#idle();
        return;
      }
      if (!this.#takeStart()) return;
      this.#waiting.delete(next.value);
      this.#inFlight++;
      this.#maxInFlight = Math.max(this.#maxInFlight, this.#inFlight);
      // Tasks report their own failures; the slot comes back either way.
      next.value
        .run()
        .catch(() => undefined)
        .finally(() => {
          this.#inFlight--;
          this.#pump();
        });
    }
  }

  /** Nothing waits or runs: the next fan-out starts slow again and measures the load it meets. */
  #idle(): void {
    if (!this.#load) return;
    this.#rate = this.#load.minRate;
    this.#adjustedAt = undefined;
  }
}
