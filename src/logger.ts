import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * Fields that may hold personal data and never reach a log line, wherever a call site puts them: shopper ids,
 * emails, free event context, request variables. Call sites log none of them; this catches a mistake.
 */
export const REDACTED_FIELDS = [
  'userId',
  'user_id',
  'shopperId',
  'email',
  'context',
  'variables',
  '*.userId',
  '*.user_id',
  '*.shopperId',
  '*.email',
  '*.context',
  '*.variables',
];

/** Pino options of every process: level, name, redaction. */
export function loggerOptions(level: string, name: string): pino.LoggerOptions {
  return { level, name, redact: { paths: REDACTED_FIELDS, censor: '[redacted]' } };
}

/** A JSON logger; `fd` 2 writes to stderr, for command-line tools whose stdout is their output. */
export function createLogger(level: string, name: string, fd: 1 | 2 = 1): Logger {
  return fd === 1 ? pino(loggerOptions(level, name)) : pino(loggerOptions(level, name), pino.destination(2));
}

/**
 * A client's error message as it may be logged: GraphQL's coercion messages quote the value sent ("got invalid
 * value \"…\"", "cannot represent value: …"), which may be a shopper id or free context; the rest stays.
 */
export function loggableMessage(message: string): string {
  return message
    .replace(/got invalid value .*?( at "|; |$)/g, 'got an invalid value$1')
    .replace(/(represent(?: a)?(?: non-[\w-]+)? value): .*$/g, '$1 (value not logged)');
}
