// A minimal Chrome DevTools Protocol client for a child process started with --inspect, and a CPU profiler
// built on it that records only a window of a run (the load phase, not the set-up before it). Written here
// because the protocol is small and documented (Runtime, Profiler, HeapProfiler domains) and `ws` is already a
// dependency; the CDP client packages on npm bring a browser-sized API for three calls.
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';

export interface Inspector {
  call(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  evaluate<T>(expression: string): Promise<T>;
  close(): void;
}

/** A minimal Chrome DevTools Protocol client for the child's main context. */
export async function connectInspector(port: number): Promise<Inspector> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const target = targets[0];
  if (!target) throw new Error(`no inspector target on port ${port}`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await once(socket, 'open');
  const waiting = new Map<number, { resolve: (result: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as {
      id?: number;
      result?: Record<string, unknown>;
      error?: { message: string };
    };
    const call = message.id === undefined ? undefined : waiting.get(message.id);
    if (!call) return; // an event; no domain is enabled, so none is expected
    waiting.delete(message.id!);
    if (message.error) call.reject(new Error(message.error.message));
    else call.resolve(message.result ?? {});
  });
  socket.on('close', () => {
    for (const call of waiting.values()) call.reject(new Error('inspector connection closed'));
    waiting.clear();
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params }));
    });
  return {
    call,
    async evaluate<T>(expression: string) {
      const result = (await call('Runtime.evaluate', { expression, returnByValue: true })) as {
        result: { value?: unknown };
        exceptionDetails?: { text: string };
      };
      if (result.exceptionDetails) throw new Error(`evaluating ${expression}: ${result.exceptionDetails.text}`);
      return result.result.value as T;
    },
    close: () => socket.close(),
  };
}

/**
 * CPU profiles of several processes over one window: `start` begins sampling in each, `stop` writes each
 * profile to `<dir>/<name>.cpuprofile` (readable by bench/lib/cpu-profile.ts and Chrome DevTools).
 */
export class WindowProfiler {
  readonly #targets: { name: string; inspector: Inspector }[];

  private constructor(targets: { name: string; inspector: Inspector }[]) {
    this.#targets = targets;
  }

  static async attach(processes: { name: string; inspectPort: number }[]): Promise<WindowProfiler> {
    return new WindowProfiler(
      await Promise.all(
        processes.map(async ({ name, inspectPort }) => ({ name, inspector: await connectInspector(inspectPort) })),
      ),
    );
  }

  async start(): Promise<void> {
    await Promise.all(
      this.#targets.map(async ({ inspector }) => {
        await inspector.call('Profiler.enable');
        await inspector.call('Profiler.start');
      }),
    );
  }

  /** Stops sampling and writes the profiles; returns their paths. */
  async stop(dir: string): Promise<string[]> {
    await mkdir(dir, { recursive: true });
    return Promise.all(
      this.#targets.map(async ({ name, inspector }) => {
        const { profile } = await inspector.call('Profiler.stop');
        const path = join(dir, `${name}.cpuprofile`);
        await writeFile(path, JSON.stringify(profile));
        return path;
      }),
    );
  }

  close(): void {
    for (const { inspector } of this.#targets) inspector.close();
  }
}
