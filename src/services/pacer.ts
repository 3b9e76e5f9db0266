/** Work the pacer runs: one watched list's pending recomputation. */
export interface PacedTask {
  run(): Promise<void>;
}

/**
 * Runs queued tasks in arrival order with at most `concurrency` in flight and, with `ratePerSecond`, no more
 * starts per second than that, so that a fan-out (a model activation recomputing every open list) spreads
 * over time instead of all ranking at once. The rate is what bounds the CPU share a fan-out takes: each
 * recomputation costs a roughly fixed CPU time, and with Redis round trips between their steps even a few
 * tasks in flight can otherwise take every cycle the freshness path needs. A task already waiting is not
 * queued again: its one run covers every request made meanwhile.
 */
export class Pacer {
  readonly #concurrency: number;
  readonly #ratePerSecond: number;
  /** Token bucket of starts (a burst of `concurrency`), when a rate is set. */
  #tokens: number;
  #refilledAt = performance.now();
  #timer: NodeJS.Timeout | undefined;
  /** Waiting tasks; a Set keeps arrival order and makes queuing twice a no-op. */
  readonly #waiting = new Set<PacedTask>();
  #inFlight = 0;
  #maxInFlight = 0;

  constructor(concurrency: number, ratePerSecond = 0) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be at least 1');
    if (!(ratePerSecond >= 0)) throw new RangeError('ratePerSecond must be 0 (no limit) or more');
    this.#concurrency = concurrency;
    this.#ratePerSecond = ratePerSecond;
    this.#tokens = concurrency;
  }

  /** Takes a start from the bucket; false (and a timer for the next token) when it is empty. */
  #takeStart(): boolean {
    if (this.#ratePerSecond === 0) return true;
    const now = performance.now();
    this.#tokens = Math.min(this.#concurrency, this.#tokens + ((now - this.#refilledAt) * this.#ratePerSecond) / 1000);
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
      Math.ceil(((1 - this.#tokens) * 1000) / this.#ratePerSecond),
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

  #pump(): void {
    while (this.#inFlight < this.#concurrency) {
      const next = this.#waiting.values().next();
      if (next.done || !this.#takeStart()) return;
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
}
