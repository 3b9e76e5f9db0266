import { InvalidInputError } from '../errors.ts';

/** Longest id (user, item, session, event, recommendation) the gateway stores. */
export const MAX_ID_LENGTH = 128;
/** Longest free text (name, description, URL). */
export const MAX_TEXT_LENGTH = 4096;
/** Largest JSON document (event context, item attributes, shopper traits), serialised. */
export const MAX_JSON_BYTES = 8192;
/** Deepest nesting of objects and arrays in a JSON document (`{"a":{}}` is depth 2). */
export const MAX_JSON_DEPTH = 10;

/** Every id argument and input field goes through here, so every entry point refuses the same ids. */
export function checkId(field: string, value: string, required = true): string {
  if (value.length === 0 && required) throw new InvalidInputError(field, 'required', 'must not be empty');
  return checkLength(field, value, MAX_ID_LENGTH);
}

/** A string Postgres stores as sent: well-formed Unicode, no NUL, at most `max` UTF-16 units. */
export function checkLength(field: string, value: string, max: number): string {
  checkText(field, value);
  if (value.length > max) {
    throw new InvalidInputError(field, 'maxLength', `must be at most ${max} characters (got ${value.length})`);
  }
  return value;
}

function checkText(field: string, value: string): void {
  // Postgres text cannot hold a NUL character; refusing it here keeps one bad value from failing a batch.
  if (value.includes('\u0000')) throw new InvalidInputError(field, 'noNul', 'must not contain the NUL character');
  // A lone surrogate has no UTF-8 form: Postgres would refuse the row (jsonb) or the driver would store U+FFFD,
  // so two different ids could end up as one.
  if (!value.isWellFormed()) {
    throw new InvalidInputError(field, 'format', 'must be well-formed Unicode (it holds a lone UTF-16 surrogate)');
  }
}

/**
 * A JSON document Postgres can store as jsonb: at most MAX_JSON_DEPTH deep, well-formed Unicode without NUL
 * in every key and string, at most MAX_JSON_BYTES serialised. The error names the path inside the document.
 */
export function checkJson(field: string, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  checkJsonValue(field, value, 1);
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > MAX_JSON_BYTES) {
    throw new InvalidInputError(field, 'maxSize', `must be at most ${MAX_JSON_BYTES} bytes as JSON (got ${bytes})`);
  }
  return value;
}

function checkJsonValue(path: string, value: unknown, depth: number): void {
  if (typeof value === 'string') {
    checkText(path, value);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (depth > MAX_JSON_DEPTH) {
    throw new InvalidInputError(path, 'depth', `must nest objects and arrays at most ${MAX_JSON_DEPTH} deep`);
  }
  if (Array.isArray(value)) {
    for (const [index, entry] of value.entries()) checkJsonValue(`${path}[${index}]`, entry, depth + 1);
    return;
  }
  for (const [key, entry] of Object.entries(value)) {
    checkText(`${path}.${key}`, key);
    checkJsonValue(`${path}.${key}`, entry, depth + 1);
  }
}

/** An ISO-8601 date-time from a client: a real calendar date and time, with or without an offset. */
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parses an ISO-8601 date-time strictly: `Date.parse` alone takes "12", "March 3" and rolls 2026-02-30 over
 * into March. Returns undefined when the text is not one.
 */
export function parseIsoDateTime(text: string): Date | undefined {
  const match = ISO_DATE_TIME.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? 0));
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return undefined;
  // The calendar fields must mean themselves: build the same date in UTC (setUTCFullYear, since Date.UTC
  // reads years 0-99 as 1900-1999) and compare; 2026-02-30 would roll over into March.
  const asUtc = new Date(0);
  asUtc.setUTCFullYear(year!, month! - 1, day!);
  asUtc.setUTCHours(hour!, minute!, second!);
  const real =
    asUtc.getUTCFullYear() === year &&
    asUtc.getUTCMonth() === month! - 1 &&
    asUtc.getUTCDate() === day &&
    asUtc.getUTCHours() === hour &&
    asUtc.getUTCMinutes() === minute &&
    asUtc.getUTCSeconds() === second;
  return real ? new Date(ms) : undefined;
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

/** Largest page of a connection (`first`, `last`). */
export const MAX_PAGE_SIZE = 100;

export function checkPageSize(field: string, size: number | null | undefined): void {
  if (size != null && (!Number.isInteger(size) || size < 0 || size > MAX_PAGE_SIZE)) {
    throw new InvalidInputError(field, 'range', `must be an integer from 0 to ${MAX_PAGE_SIZE} (got ${size})`);
  }
}
