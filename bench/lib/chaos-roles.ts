import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nodeFlagsOf } from '../../src/node-flags.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** How a role's process ended when nobody meant to end it. */
export interface UnexpectedExit {
  role: string;
  code: number | null;
  signal: string | null;
  at: string;
  /** Its last log lines, for the report. */
  lastLines: string[];
}

/**
 * One role (gateway, worker, trainer) as its own process, restartable: its output goes to `<logDir>/<name>.log`;
 * an exit the suite did not cause (`kill`, `stop`) is recorded as unexpected.
 */
export class RoleProcess {
  readonly name: string;
  readonly #entry: string;
  readonly #args: string[];
  readonly #env: Record<string, string>;
  readonly #log: WriteStream;
  readonly #unexpected: UnexpectedExit[];
  readonly #lastLines: string[] = [];
  #child: ChildProcess | undefined;
  #expectingExit = false;
  #lines: string[] = [];

  constructor(options: {
    name: string;
    entry: string;
    args?: string[];
    env: Record<string, string>;
    logDir: string;
    unexpected: UnexpectedExit[];
  }) {
    this.name = options.name;
    this.#entry = options.entry;
    this.#args = options.args ?? [];
    this.#env = options.env;
    this.#log = createWriteStream(join(options.logDir, `${options.name}.log`), { flags: 'a' });
    this.#unexpected = options.unexpected;
  }

  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Log lines since the last start (JSON text), to wait for one. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  start(): void {
    this.#expectingExit = false;
    this.#lines = [];
    const flags = [...nodeFlagsOf(this.#entry), '--import', 'tsx'];
    const child = spawn(process.execPath, [...flags, `${root}src/${this.#entry}`, ...this.#args], {
      cwd: root,
      env: { ...process.env, ...this.#env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.#log.write(`--- ${new Date().toISOString()} start pid ${child.pid}\n`);
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.#log.write(`${line}\n`);
        this.#lines.push(line);
        this.#lastLines.push(line);
        if (this.#lastLines.length > 20) this.#lastLines.shift();
      });
    }
    child.once('exit', (code, signal) => {
      this.#log.write(`--- ${new Date().toISOString()} exit code ${code} signal ${signal}\n`);
      if (!this.#expectingExit) {
        this.#unexpected.push({
          role: this.name,
          code,
          signal,
          at: new Date().toISOString(),
          lastLines: [...this.#lastLines],
        });
      }
    });
  }

  /** SIGKILL, as a crash; resolves once the process is gone. */
  async kill(): Promise<void> {
    await this.#end('SIGKILL', 0);
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves with the exit code (null when it had to be killed). */
  async stop(graceMs = 20_000): Promise<number | null> {
    return this.#end('SIGTERM', graceMs);
  }

  async #end(signal: NodeJS.Signals, graceMs: number): Promise<number | null> {
    const child = this.#child;
    this.#expectingExit = true;
    if (!child || !this.running) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const timer = graceMs > 0 ? setTimeout(() => child.kill('SIGKILL'), graceMs) : undefined;
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  closeLog(): void {
    this.#log.end();
  }
}
