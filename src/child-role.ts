import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from './logger.ts';

/** Longest wait between restarts of a child that keeps dying. */
const MAX_RESTART_DELAY_MS = 30_000;
/** How long a child may take to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 15_000;

export interface ChildRole {
  /** Sends SIGTERM and resolves once the child exited (killed after a timeout); no restart after it. */
  stop(): Promise<void>;
}

/**
 * Runs another role's entry point (`src/<entry>`) as a child process of this one, restarting it with backoff
 * when it dies: `npm start` keeps the trainer off the gateway's event loop this way while remaining one
 * command. Its output goes to this process's stdout and stderr.
 */
export function startChildRole(entry: string, logger: Logger): ChildRole {
  const path = fileURLToPath(new URL(`./${entry}`, import.meta.url));
  let child: ChildProcess | undefined;
  let stopping = false;
  let delay = 1000;
  let restartTimer: NodeJS.Timeout | undefined;

  const spawn = () => {
    const started = Date.now();
    child = fork(path, process.argv.slice(2), { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
    child.once('exit', (code, signal) => {
      child = undefined;
      if (stopping) return;
      // A child that ran for a while gets a fresh backoff; one that dies at once waits longer each time.
      delay = Date.now() - started > MAX_RESTART_DELAY_MS ? 1000 : Math.min(delay * 2, MAX_RESTART_DELAY_MS);
      logger.error({ entry, code, signal, restartInMs: delay }, `${entry} exited; restarting it`);
      restartTimer = setTimeout(spawn, delay);
    });
  };
  spawn();

  return {
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      const running = child;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGTERM');
      const kill = setTimeout(() => running.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(kill);
    },
  };
}
