import type { Logger } from './logger.ts';

/** What a progress line says: how far a long task is, how fast it goes and when it should end. */
export interface ProgressReport {
  task: string;
  done: number;
  total: number | undefined;
  percent: number | undefined;
  perSecond: number;
  etaSeconds: number | undefined;
}

/**
 * Logs the progress of a long task (demo load, replay, training, tuning, import) at most every `everyMs`,
 * with percent, rate and ETA when the total is known. `onReport` sees every line, e.g. to publish it.
 */
export class Progress {
  readonly #logger: Logger;
  readonly #task: string;
  readonly #everyMs: number;
  readonly #started = performance.now();
  readonly #onReport: ((report: ProgressReport) => void) | undefined;
  #total: number | undefined;
  #done = 0;
  #lastLog = performance.now();

  constructor(
    logger: Logger,
    task: string,
    options: { total?: number; everyMs?: number; onReport?: (report: ProgressReport) => void } = {},
  ) {
    this.#logger = logger;
    this.#task = task;
    this.#total = options.total;
    this.#everyMs = options.everyMs ?? 2000;
    this.#onReport = options.onReport;
  }

  set total(total: number) {
    this.#total = total;
  }

  /** Sets how much is done; logs when the last line is older than `everyMs`. */
  update(done: number): void {
    this.#done = done;
    if (performance.now() - this.#lastLog < this.#everyMs) return;
    this.#lastLog = performance.now();
    const report = this.report();
    this.#logger.info(report, `${this.#task}: ${describe(report)}`);
    this.#onReport?.(report);
  }

  add(count: number): void {
    this.update(this.#done + count);
  }

  report(): ProgressReport {
    const seconds = (performance.now() - this.#started) / 1000;
    const perSecond = seconds > 0 ? this.#done / seconds : 0;
    const total = this.#total;
    const left = total === undefined ? undefined : Math.max(0, total - this.#done);
    return {
      task: this.#task,
      done: this.#done,
      total,
      percent: total ? Math.min(100, Math.round((1000 * this.#done) / total) / 10) : undefined,
      perSecond: Math.round(perSecond),
      etaSeconds: left === undefined || perSecond === 0 ? undefined : Math.round(left / perSecond),
    };
  }

  /** Logs the last line: what was done, in how long. */
  finish(extra: Record<string, unknown> = {}): ProgressReport {
    const report = this.report();
    const seconds = Math.round(performance.now() - this.#started) / 1000;
    this.#logger.info({ ...report, seconds, ...extra }, `${this.#task}: done, ${report.done} in ${seconds} s`);
    return report;
  }
}

function describe(report: ProgressReport): string {
  const share = report.percent === undefined ? `${report.done}` : `${report.percent}% (${report.done}/${report.total})`;
  const eta = report.etaSeconds === undefined ? '' : `, about ${report.etaSeconds} s left`;
  return `${share}, ${report.perSecond}/s${eta}`;
}
