// Both thread pools a training or an evaluation needs, started and closed together.
import { createAlsExecutor } from './als-pool.ts';
import { createEaseExecutor } from './ease-pool.ts';
import type { Executors } from './evaluation.ts';

/** ALS and EASE pools of `threads` workers each (they are used one after the other, never at once). */
export async function createExecutors(
  threads: number,
  onFallback?: (reason: string) => void,
): Promise<Executors & { close(): Promise<void> }> {
  const [als, ease] = await Promise.all([
    createAlsExecutor(threads, onFallback),
    createEaseExecutor(threads, onFallback),
  ]);
  return {
    als,
    ease,
    async close() {
      await Promise.all([als.close(), ease.close()]);
    },
  };
}
