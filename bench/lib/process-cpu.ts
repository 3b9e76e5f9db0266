import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 on Linux nearly everywhere). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) process `pid` has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields from after its last ')'.
  // There the state is field 3, so utime (field 14) and stime (field 15) are at indices 11 and 12.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

export function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) * 1024;
}

/** CPU seconds a process has used, or 0 once it is gone (a backend that closed between two readings). */
function cpuSecondsOrZero(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return 0;
  }
}

/**
 * CPU seconds per named role between `start()` and `stop()`, each role a set of processes read again at both
 * ends (Postgres gives every connection a backend process of its own, and pools open and close them). A
 * process that appears in between counts from zero; one that ends in between loses what it used after the
 * start reading, which undercounts by at most that process' last seconds.
 */
export class CpuMeter {
  readonly #roles: Record<string, () => Promise<readonly number[]>>;

  constructor(roles: Record<string, () => Promise<readonly number[]>>) {
    this.#roles = roles;
  }

  async start(): Promise<{ stop(): Promise<Record<string, number>> }> {
    const read = async () => {
      const readings: Record<string, Map<number, number>> = {};
      for (const [role, pids] of Object.entries(this.#roles)) {
        readings[role] = new Map((await pids()).map((pid) => [pid, cpuSecondsOrZero(pid)]));
      }
      return readings;
    };
    const before = await read();
    return {
      async stop() {
        const after = await read();
        const seconds: Record<string, number> = {};
        for (const [role, readings] of Object.entries(after)) {
          let sum = 0;
          for (const [pid, used] of readings) sum += used - (before[role]?.get(pid) ?? 0);
          seconds[role] = sum;
        }
        return seconds;
      },
    };
  }
}
