import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ErrorCode } from '../errors.ts';

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

/** The one subscription an HTTP (SSE) request holds, keyed by its request object. */
const SSE_SUBSCRIPTION = 'sse';

/**
 * Counts subscriptions served over HTTP (Server-Sent Events: yoga answers a subscription POSTed or GET with
 * `Accept: text/event-stream`) against the same caps as WebSocket ones, so `MAX_SUBSCRIPTIONS` bounds every
 * transport. An SSE request holds one subscription; its slot is given back when the stream ends or the client
 * goes away (yoga then returns the iterator, which ends it). WebSocket subscriptions take their slot in
 * graphql-ws's onSubscribe and are marked with `transport: 'ws'` in their context, so they are not counted twice.
 */
export function useSseSubscriptionLimits(limits: SubscriptionLimits): Plugin<{ transport?: 'ws' }> {
  return {
    onSubscribe({ context, setResultAndStopExecution }) {
      if (context.transport === 'ws' || typeof context.request !== 'object' || context.request === null) return;
      const request: object = context.request;
      const refused = limits.acquire(request, SSE_SUBSCRIPTION);
      if (refused) {
        setResultAndStopExecution({
          errors: [new GraphQLError(refused, { extensions: { code: ErrorCode.TOO_MANY_SUBSCRIPTIONS } })],
        });
        return;
      }
      const release = () => limits.release(request, SSE_SUBSCRIPTION);
      return {
        onSubscribeResult({ result }) {
          // An operation that failed before streaming (a resolver error) holds no stream: nothing ends it later.
          if (!(Symbol.asyncIterator in result)) {
            release();
            return;
          }
          return { onEnd: release };
        },
        onSubscribeError: release,
      };
    },
  };
}
