// Fits the content mapping (content.ts) on a worker thread. Tokenising every trained item's name, description,
// category and attributes is O(tokens): measured at 0.36 s for 20,000 described items and 1.7 s for 100,000,
// which the feature worker's event loop must not spend when it starts serving a version.
import { parentPort, type Worker } from 'node:worker_threads';
import { type ContentMapping, fitContentMapping, type ItemContent } from './content.ts';
import { isWorkerOf, startModuleWorker } from './threads.ts';

const WORKER_FLAG = 'contentFitWorker';

/**
 * Below this many trained items the fit takes a few tens of milliseconds, less than starting a thread: it
 * runs on the calling thread.
 */
export const CONTENT_THREAD_MIN_ITEMS = 5000;

interface FitJob {
  readonly contents: readonly ItemContent[];
  readonly itemFactors: Float32Array;
  readonly factors: number;
}

/** The mapping as the thread sends it back: everything but the factors, which the caller already has. */
type FittedArrays = Omit<ContentMapping, 'itemFactors'>;

/**
 * fitContentMapping, on a thread of its own when there are at least `minItems` items. The contents are copied
 * to the thread (a structured clone on the calling thread: tens of milliseconds at 100,000 items, against the
 * fit's seconds); falls back to the calling thread, saying why through `onFallback`, when the thread cannot
 * start or fails. The result references `itemFactors`, as fitContentMapping's does.
 */
export async function fitContentMappingOffThread(
  contents: readonly ItemContent[],
  itemFactors: Float32Array,
  factors: number,
  options: { minItems?: number; onFallback?: (reason: string) => void } = {},
): Promise<ContentMapping> {
  if (contents.length < (options.minItems ?? CONTENT_THREAD_MIN_ITEMS)) {
    return fitContentMapping(contents, itemFactors, factors);
  }
  let worker: Worker;
  try {
    worker = await startModuleWorker(import.meta.url, WORKER_FLAG, 'content fit');
  } catch (err) {
    options.onFallback?.(err instanceof Error ? err.message : String(err));
    return fitContentMapping(contents, itemFactors, factors);
  }
  try {
    const fitted = await new Promise<FittedArrays>((resolve, reject) => {
      worker.once('error', reject);
      // A thread that dies without a word (out of memory) must not leave the load waiting forever.
      worker.once('exit', (code) => reject(new Error(`content fit thread exited with code ${code}`)));
      worker.once('message', (m: FittedArrays | string) => (typeof m === 'string' ? reject(new Error(m)) : resolve(m)));
      const job: FitJob = { contents, itemFactors, factors };
      worker.postMessage(job);
    });
    return { ...fitted, itemFactors };
  } catch (err) {
    // The fit is deterministic: whatever failed on the thread is worth one try on this one.
    options.onFallback?.(err instanceof Error ? err.message : String(err));
    return fitContentMapping(contents, itemFactors, factors);
  } finally {
    await worker.terminate();
  }
}

if (isWorkerOf(WORKER_FLAG) && parentPort) {
  const port = parentPort;
  port.once('message', (job: FitJob) => {
    try {
      const { itemFactors: _copy, ...fitted } = fitContentMapping(job.contents, job.itemFactors, job.factors);
      const arrays: FittedArrays = fitted;
      // Moved, not copied: the arrays were made here (fitContentMapping allocates plain ArrayBuffers).
      const moved = [fitted.idf, fitted.itemNorms, fitted.postingsIndptr, fitted.postingsItems, fitted.postingsWeights]
        .map((array) => array.buffer)
        .filter((buffer): buffer is ArrayBuffer => buffer instanceof ArrayBuffer);
      port.postMessage(arrays, moved);
    } catch (err) {
      port.postMessage(err instanceof Error ? (err.stack ?? err.message) : String(err));
    }
  });
  port.postMessage('ready');
}
