/**
 * Caps on open subscriptions, per connection and per gateway process, so one client (or a flood of them)
 * cannot exhaust memory. A slot is taken when a subscription starts and given back when it completes or its
 * connection closes; giving back twice is harmless.
 */
export class SubscriptionLimits {
  readonly #maxPerConnection: number;
  readonly #maxTotal: number;
  readonly #open = new WeakMap<object, Set<string>>();
  #total = 0;

  constructor(options: { maxPerConnection: number; maxTotal: number }) {
    this.#maxPerConnection = options.maxPerConnection;
    this.#maxTotal = options.maxTotal;
  }

  get total(): number {
    return this.#total;
  }

  /** Takes a slot for subscription `id` of `connection`; returns why not when a cap is reached. */
  acquire(connection: object, id: string): string | undefined {
    const open = this.#open.get(connection) ?? new Set<string>();
    if (open.size >= this.#maxPerConnection) {
      return `at most ${this.#maxPerConnection} subscriptions per connection; complete one before starting another`;
    }
    if (this.#total >= this.#maxTotal) return `this gateway serves its maximum of ${this.#maxTotal} subscriptions`;
    open.add(id);
    this.#open.set(connection, open);
    this.#total++;
    return undefined;
  }

  release(connection: object, id: string): void {
    if (this.#open.get(connection)?.delete(id)) this.#total--;
  }

  releaseAll(connection: object): void {
    const open = this.#open.get(connection);
    if (!open) return;
    this.#total -= open.size;
    this.#open.delete(connection);
  }
}
