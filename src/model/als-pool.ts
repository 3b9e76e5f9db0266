// Runs the ALS kernels on worker threads over SharedArrayBuffer-backed factors (no copies), or in-process when
// one thread is asked for or workers cannot start. This file is both the pool and the worker's entry point.
import { parentPort, type Worker } from 'node:worker_threads';
import { addGram, makeScratch, type SolveTask, solveRows, whitenRows } from './als-kernel.ts';
import { isWorkerOf, startModuleWorker } from './threads.ts';

const WORKER_FLAG = 'alsPoolWorker';

type Job =
  | { readonly kind: 'solve'; readonly task: SolveTask }
  | {
      readonly kind: 'gram';
      readonly f: Float32Array;
      readonly k: number;
      readonly start: number;
      readonly end: number;
      readonly out: Float64Array;
    }
  | {
      readonly kind: 'whiten';
      readonly lowerInverse: Float64Array;
      readonly from: Float32Array;
      readonly to: Float32Array;
      readonly k: number;
      readonly start: number;
      readonly end: number;
    };

/** Rows [0, rows) cut into `parts` contiguous ranges of near-equal length. */
function evenRanges(rows: number, parts: number): [number, number][] {
  const per = Math.ceil(rows / parts);
  return Array.from({ length: parts }, (_, w) => [Math.min(rows, w * per), Math.min(rows, (w + 1) * per)]);
}

/** Omit applied to each member of a union, so the `method` discriminant survives. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Where the ALS half-steps run. Every row range is independent, so results do not depend on thread count. */
export interface AlsExecutor {
  readonly threads: number;
  /** Solves every range of rows; ranges are handed out to idle threads as they finish. */
  solve(
    base: DistributiveOmit<SolveTask, 'start' | 'end'>,
    ranges: readonly (readonly [number, number])[],
  ): Promise<void>;
  /** Writes `lowerInverse` · row for the first `rows` rows of `from` (k columns) into `to` (CG whitening). */
  whiten(lowerInverse: Float64Array, from: Float32Array, to: Float32Array, k: number, rows: number): Promise<void>;
  /** FᵀF of the first `rows` rows of f (k columns). */
  gram(f: Float32Array, k: number, rows: number): Promise<Float64Array>;
  close(): Promise<void>;
}

function runJob(job: Job, scratch: Map<number, ReturnType<typeof makeScratch>>): void {
  if (job.kind === 'gram') {
    job.out.fill(0);
    addGram(job.f, job.k, job.start, job.end, job.out);
    return;
  }
  const k = job.kind === 'solve' ? job.task.factors : job.k;
  let s = scratch.get(k);
  if (!s) {
    s = makeScratch(k);
    scratch.set(k, s);
  }
  if (job.kind === 'solve') solveRows(job.task, s);
  else whitenRows(job.lowerInverse, job.from, job.to, k, job.start, job.end, s);
}

/** The same kernels on the calling thread: the one-thread baseline and the fallback. */
export function inProcessExecutor(): AlsExecutor {
  const scratch = new Map<number, ReturnType<typeof makeScratch>>();
  return {
    threads: 1,
    async solve(base, ranges) {
      for (const [start, end] of ranges) runJob({ kind: 'solve', task: { ...base, start, end } }, scratch);
    },
    async whiten(lowerInverse, from, to, k, rows) {
      runJob({ kind: 'whiten', lowerInverse, from, to, k, start: 0, end: rows }, scratch);
    },
    async gram(f, k, rows) {
      const out = new Float64Array(k * k);
      addGram(f, k, 0, rows, out);
      return out;
    },
    async close() {},
  };
}

/**
 * Starts `threads` workers; falls back to the in-process executor (and reports why through `onFallback`)
 * when fewer than two threads are asked for or a worker cannot start.
 */
export async function createAlsExecutor(threads: number, onFallback?: (reason: string) => void): Promise<AlsExecutor> {
  if (threads < 2) return inProcessExecutor();
  let workers: Worker[];
  try {
    workers = await Promise.all(
      Array.from({ length: threads }, () => startModuleWorker(import.meta.url, WORKER_FLAG, 'ALS')),
    );
  } catch (err) {
    onFallback?.(err instanceof Error ? err.message : String(err));
    return inProcessExecutor();
  }
  let failure: Error | undefined;
  for (const w of workers) w.on('error', (err) => (failure ??= err));

  const send = (worker: Worker, job: Job) =>
    new Promise<void>((resolve, reject) => {
      worker.once('message', (m) => (m === 'done' ? resolve() : reject(new Error(String(m)))));
      worker.postMessage(job);
    });

  return {
    threads,
    async solve(base, ranges) {
      let next = 0;
      await Promise.all(
        workers.map(async (worker) => {
          while (next < ranges.length) {
            const range = ranges[next++];
            if (!range) break;
            await send(worker, { kind: 'solve', task: { ...base, start: range[0], end: range[1] } });
          }
        }),
      );
      if (failure) throw failure;
    },
    async whiten(lowerInverse, from, to, k, rows) {
      const ranges = evenRanges(rows, workers.length);
      await Promise.all(
        workers.map((worker, w) => {
          const [start, end] = ranges[w] as [number, number];
          return send(worker, { kind: 'whiten', lowerInverse, from, to, k, start, end });
        }),
      );
    },
    async gram(f, k, rows) {
      const parts = new Float64Array(new SharedArrayBuffer(8 * k * k * workers.length));
      const ranges = evenRanges(rows, workers.length);
      await Promise.all(
        workers.map((worker, w) => {
          const [start, end] = ranges[w] as [number, number];
          return send(worker, { kind: 'gram', f, k, start, end, out: parts.subarray(w * k * k, (w + 1) * k * k) });
        }),
      );
      const out = new Float64Array(k * k);
      for (let w = 0; w < workers.length; w++) {
        for (let i = 0; i < k * k; i++) out[i] = (out[i] as number) + (parts[w * k * k + i] as number);
      }
      return out;
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

if (isWorkerOf(WORKER_FLAG) && parentPort) {
  const port = parentPort;
  const scratch = new Map<number, ReturnType<typeof makeScratch>>();
  port.on('message', (job: Job) => {
    try {
      runJob(job, scratch);
      port.postMessage('done');
    } catch (err) {
      port.postMessage(err instanceof Error ? (err.stack ?? err.message) : String(err));
    }
  });
  port.postMessage('ready');
}
