/** Most statements in flight at once: as EventWriter, calls arriving meanwhile go together in the next one. */
const MAX_IN_FLIGHT = 2;
/** Most rows one statement carries. */
const MAX_ROWS = 5000;

interface Pending<T> {
  rows: readonly T[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Writes rows with at most MAX_IN_FLIGHT statements at a time, combining the calls that arrive while those
 * run into one statement: under load one round trip serves many requests, and each call still resolves only
 * once its rows are written (a failed statement rejects every call in it). Bounded: at most MAX_ROWS rows per
 * statement; the callers are requests that wait for it, so the queue is bounded by the requests in flight.
 */
export class CoalescingWriter<T> {
  readonly #write: (rows: readonly T[]) => Promise<void>;
  #waiting: Pending<T>[] = [];
  #inFlight = 0;

  constructor(write: (rows: readonly T[]) => Promise<void>) {
    this.#write = write;
  }

  write(rows: readonly T[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiting.push({ rows, resolve, reject });
      this.#next();
    });
  }

  #next(): void {
    if (this.#inFlight >= MAX_IN_FLIGHT || this.#waiting.length === 0) return;
    const group: Pending<T>[] = [];
    let size = 0;
    while (this.#waiting.length && (group.length === 0 || size + this.#waiting[0]!.rows.length <= MAX_ROWS)) {
      const next = this.#waiting.shift()!;
      group.push(next);
      size += next.rows.length;
    }
    this.#inFlight++;
    this.#write(group.flatMap((pending) => pending.rows))
      .then(
        () => {
          for (const pending of group) pending.resolve();
        },
        (error: unknown) => {
          for (const pending of group) pending.reject(error);
        },
      )
      .finally(() => {
        this.#inFlight--;
        this.#next();
      });
  }
}
