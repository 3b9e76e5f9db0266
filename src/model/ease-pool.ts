// Runs the EASE solve (ease-kernel.ts) on worker threads over SharedArrayBuffers, so a fit of a few thousand
// items (tens of seconds of arithmetic) never holds the caller's event loop, and two threads share one solve.
// This file is both the pool and the worker's entry point, as als-pool.ts is.
import { parentPort, type Worker } from 'node:worker_threads';
import { easeFlags, easeSolve } from './ease-kernel.ts';
import { isWorkerOf, startModuleWorker } from './threads.ts';

const WORKER_FLAG = 'easePoolWorker';

interface SolveJob {
  readonly a: Float32Array;
  readonly z: Float32Array;
  readonly n: number;
  readonly flags: Int32Array;
  readonly w: number;
  readonly threads: number;
}

/** Where EASE solves run. */
export interface EaseExecutor {
  /** Threads one solve uses (0: it runs on the calling thread, the fallback). */
  readonly threads: number;
  /** `a` (n×n, shared) holds G + λI on entry and P after; `z` (n×n, shared) receives B. */
  solve(a: Float32Array, z: Float32Array, n: number): Promise<void>;
  close(): Promise<void>;
}

/** An n×n float32 matrix other threads can write. */
export function sharedSquare(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(Math.max(1, n * n) * 4), 0, n * n);
}

/** The solve on the calling thread: tests, and the fallback when workers cannot start. */
export function inProcessEaseExecutor(): EaseExecutor {
  return {
    threads: 0,
    async solve(a, z, n) {
      easeSolve(a, z, n, easeFlags(n), 0, 1);
    },
    async close() {},
  };
}

/**
 * Starts `threads` (≥ 1) workers that share each solve; falls back to the calling thread (and says why
 * through `onFallback`) when a worker cannot start.
 */
export async function createEaseExecutor(
  threads: number,
  onFallback?: (reason: string) => void,
): Promise<EaseExecutor> {
  let workers: Worker[];
  try {
    workers = await Promise.all(
      Array.from({ length: Math.max(1, threads) }, () => startModuleWorker(import.meta.url, WORKER_FLAG, 'EASE')),
    );
  } catch (err) {
    onFallback?.(err instanceof Error ? err.message : String(err));
    return inProcessEaseExecutor();
  }
  const send = (worker: Worker, job: SolveJob) =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      worker.once('error', onError);
      worker.once('message', (m) => {
        worker.off('error', onError);
        if (m === 'done') resolve();
        else reject(new Error(String(m)));
      });
      worker.postMessage(job);
    });
  return {
    threads: workers.length,
    async solve(a, z, n) {
      const flags = easeFlags(n);
      await Promise.all(workers.map((worker, w) => send(worker, { a, z, n, flags, w, threads: workers.length })));
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

if (isWorkerOf(WORKER_FLAG) && parentPort) {
  const port = parentPort;
  port.on('message', (job: SolveJob) => {
    try {
      easeSolve(job.a, job.z, job.n, job.flags, job.w, job.threads);
      port.postMessage('done');
    } catch (err) {
      port.postMessage(err instanceof Error ? (err.stack ?? err.message) : String(err));
    }
  });
  port.postMessage('ready');
}
