import { InvalidInputError } from '../errors.ts';

/** Longest id (user, item, session, event, recommendation) the gateway stores. */
export const MAX_ID_LENGTH = 128;
/** Longest free text (name, description, URL). */
export const MAX_TEXT_LENGTH = 4096;
/** Largest JSON document (event context, item attributes, shopper traits), serialised. */
export const MAX_JSON_BYTES = 8192;

export function checkId(field: string, value: string, required = true): string {
  if (value.length === 0 && required) throw new InvalidInputError(field, 'required', 'must not be empty');
  return checkLength(field, value, MAX_ID_LENGTH);
}

export function checkLength(field: string, value: string, max: number): string {
  // Postgres text cannot hold a NUL character; refusing it here keeps one bad value from failing a batch.
  if (value.includes('\u0000')) throw new InvalidInputError(field, 'noNul', 'must not contain the NUL character');
  if (value.length > max) {
    throw new InvalidInputError(field, 'maxLength', `must be at most ${max} characters (got ${value.length})`);
  }
  return value;
}

export function checkJson(field: string, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  const json = JSON.stringify(value);
  if (json.includes('\\u0000')) throw new InvalidInputError(field, 'noNul', 'must not contain the NUL character');
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_JSON_BYTES) {
    throw new InvalidInputError(field, 'maxSize', `must be at most ${MAX_JSON_BYTES} bytes as JSON (got ${bytes})`);
  }
  return value;
}

export function checkBatchSize(field: string, length: number, max: number): void {
  if (length > max) {
    throw new InvalidInputError(field, 'maxItems', `at most ${max} entries per call (got ${length}); split the batch`);
  }
}

/** Number of items a recommendation list may hold. */
export const MAX_K = 100;

export function checkK(field: string, k: number): number {
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) {
    throw new InvalidInputError(field, 'range', `must be an integer from 1 to ${MAX_K} (got ${k})`);
  }
  return k;
}
