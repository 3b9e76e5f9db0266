/** Work the pacer runs: one watched list's pending recomputation. */
export interface PacedTask {
  run(): Promise<void>;
}

/**
 * Runs queued tasks in arrival order with at most `concurrency` in flight, so that a fan-out (a model
 * activation recomputing every open list) spreads over time instead of all ranking at once. A task already
 * waiting is not queued again: its one run covers every request made meanwhile.
 */
export class Pacer {
  readonly #concurrency: number;
  /** Waiting tasks; a Set keeps arrival order and makes queuing twice a no-op. */
  readonly #waiting = new Set<PacedTask>();
  #inFlight = 0;
  #maxInFlight = 0;

  constructor(concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be at least 1');
    this.#concurrency = concurrency;
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
      if (next.done) return;
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
