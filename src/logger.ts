import { pino } from 'pino';

export type Logger = pino.Logger;

/** A JSON logger; `fd` 2 writes to stderr, for command-line tools whose stdout is their output. */
export function createLogger(level: string, name: string, fd: 1 | 2 = 1): Logger {
  return fd === 1 ? pino({ level, name }) : pino({ level, name }, pino.destination(2));
}
