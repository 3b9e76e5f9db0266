import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Config } from '../../src/config.ts';

/** A JSON log line of a role's process. */
export interface LogLine {
  msg?: string;
  name?: string;
  pid?: number;
  [key: string]: unknown;
}

export interface RoleProcess {
  child: ChildProcess;
  /** Every log line so far (the process's own and its children's, which share its stdout). */
  lines: LogLine[];
  /** Resolves with the first line (past or future) that matches, or rejects after the deadline. */
  waitFor(match: (line: LogLine) => boolean, deadlineMs?: number): Promise<LogLine>;
  /** SIGTERM, then resolves with the exit code (rejects when it does not exit within 15 s). */
  stop(): Promise<number | null>;
}

/** Starts `src/<entry>` as its own process with the test configuration (plus `env`), logging at info. */
export function startRole(entry: string, config: Config, env: Record<string, string> = {}, args: string[] = []) {
  const child = spawn(process.execPath, ['--import', 'tsx', `src/${entry}`, ...args], {
    env: {
      ...process.env,
      ...Object.fromEntries(
        Object.entries(config).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]),
      ),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    lines.push(line);
    for (const waiter of waiters) {
      if (waiter.match(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  const exited = once(child, 'exit');
  const role: RoleProcess = {
    child,
    lines,
    waitFor(match, deadlineMs = 20_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = { match, resolve };
        waiters.add(waiter);
        setTimeout(() => {
          if (waiters.delete(waiter)) reject(new Error(`${entry}: no matching log line within ${deadlineMs} ms`));
        }, deadlineMs);
      });
    },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${entry}: no exit within 15 s`)), 15_000);
      });
      try {
        const [code] = (await Promise.race([exited, deadline])) as [number | null];
        return code;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return role;
}

/** POSTs a GraphQL operation to a gateway URL. */
export async function postGraphql<T>(url: string, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}
