/**
 * Node flags of the processes that serve requests or events: the gateway (`src/server.ts`, with the feature
 * worker in it under `npm start`) and the feature worker (`src/worker.ts`). A flag must be on the command
 * line before the process starts, so package.json's start scripts, the Dockerfile and docker-compose.yml
 * repeat them; test/unit/node-flags.test.ts keeps every copy equal to this list, and the benchmarks start
 * those roles with it.
 *
 * `--single-threaded-gc`: V8 otherwise collects with helper threads (Node starts four, whatever the machine
 * has). A serving process shares the cores with the deployment's other processes (more gateways and
 * workers, one event loop per core, Redis, Postgres), so helpers add no throughput there: they only preempt
 * those neighbours, and the shopper's push waits. The same total GC work then runs on the main thread,
 * which makes each pause somewhat longer on an idle machine. Measured on the 2-core machine (README,
 * Measured): event-to-push p99 27 → 18 ms at 300 events/s and 35 → 25 ms at 600 events/s (the mean of
 * alternating runs, every pair lower with it), CPU per event unchanged within the runs' noise.
 */
export const SERVING_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** The entry points (under `src/`) that run with `SERVING_NODE_FLAGS`. */
export const SERVING_ENTRIES: readonly string[] = ['server.ts', 'worker.ts'];

/** The Node flags `src/<entry>` runs with in production. */
export function nodeFlagsOf(entry: string): readonly string[] {
  return SERVING_ENTRIES.includes(entry) ? SERVING_NODE_FLAGS : [];
}
