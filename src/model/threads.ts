// Starting a worker thread on one of this folder's TypeScript modules: the ALS and EASE pools and the content
// fit all do it the same way. Node has no library for this part (piscina and the like start JavaScript
// files; under tsx the entry must register the loader first), so it is written here once.
import { isMainThread, Worker, workerData } from 'node:worker_threads';

/** Where tsx's ESM API lives: resolved from this file so the worker finds it whatever the cwd. */
function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    // Some runners (vitest) do not provide import.meta.resolve; then resolve from the cwd.
    return 'tsx/esm/api';
  }
}

/** How long a worker may take to load its module before it counts as failed. */
const START_TIMEOUT_MS = 15_000;

/**
 * Starts a worker that imports `moduleUrl` with `workerData[flag]` set (the module's own test of whether it
 * is that worker, see isWorkerOf) and resolves once the module posts 'ready'. `name` is for messages.
 */
export function startModuleWorker(moduleUrl: string, flag: string, name: string): Promise<Worker> {
  return new Promise((resolve, reject) => {
    // Node 20 workers ignore `--import tsx` in execArgv for their entry file, so the worker registers tsx's
    // loader itself and then imports the module, which is TypeScript.
    const bootstrap = `import(${JSON.stringify(tsxApi())}).then(({ register }) => { register(); return import(${JSON.stringify(moduleUrl)}); })`;
    const worker = new Worker(bootstrap, { eval: true, workerData: { [flag]: true } });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`${name} worker did not start within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    worker.once('message', (m) => {
      clearTimeout(timer);
      if (m === 'ready') resolve(worker);
      else reject(new Error(`unexpected first message from ${name} worker: ${String(m)}`));
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** True on a worker thread that startModuleWorker started with `flag`. */
export function isWorkerOf(flag: string): boolean {
  return !isMainThread && (workerData as Record<string, unknown> | undefined)?.[flag] === true;
}
