/**
 * Stable codes of the failures a client can act on. They appear as `extensions.code` of GraphQL errors and
 * as `error.code` of the plain HTTP endpoints.
 */
export const ErrorCode = {
  /** The input breaks a rule; `field` names where, `rule` says which. */
  INVALID_INPUT: 'INVALID_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  /** A subscription cap (per connection or per gateway) is reached. */
  TOO_MANY_SUBSCRIPTIONS: 'TOO_MANY_SUBSCRIPTIONS',
  /** No API key, an unknown or revoked one, or a forged or expired shopper token (HTTP 401). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The key's scope does not cover the operation, or a public key acts for another shopper (HTTP 403). */
  FORBIDDEN: 'FORBIDDEN',
  /** Too many requests from this client; retry after `Retry-After` seconds (`extensions.retryAfter`). */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The request body is larger than `MAX_BODY_BYTES`. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** A backing service (Postgres, Redis) did not answer; nothing was acknowledged. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The workers are behind by more than MAX_EVENT_BACKLOG events; nothing was acknowledged, retry shortly. */
  OVERLOADED: 'OVERLOADED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An expected failure: carries a stable code and, for bad input, the field and the rule it broke. */
export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly rule: string | undefined;

  constructor(code: ErrorCode, message: string, details: { field?: string; rule?: string } = {}) {
    super(message);
    this.name = 'DomainError';
    this.code = code;
    this.field = details.field;
    this.rule = details.rule;
  }
}

/** Bad input: the message names the field and the rule so a developer can fix the call. */
export class InvalidInputError extends DomainError {
  constructor(field: string, rule: string, message: string) {
    super(ErrorCode.INVALID_INPUT, `${field}: ${message}`, { field, rule });
    this.name = 'InvalidInputError';
  }
}

/** A backing service did not answer; `dependency` says which, for `pgw_dependency_errors_total`. */
export class UnavailableError extends DomainError {
  readonly dependency: 'redis' | 'postgres';

  constructor(dependency: 'redis' | 'postgres', service: string, cause?: unknown) {
    super(ErrorCode.UNAVAILABLE, `${service} is unavailable; nothing was acknowledged, retry later`);
    this.name = 'UnavailableError';
    this.dependency = dependency;
    this.cause = cause;
  }
}

/** Ingestion refused by back-pressure (see IngestBacklog): nothing was acknowledged. */
export class OverloadedError extends DomainError {
  constructor(maxEvents: number) {
    super(
      ErrorCode.OVERLOADED,
      `more than ${maxEvents} stored events wait for the workers; nothing was acknowledged, retry in a second`,
    );
    this.name = 'OverloadedError';
  }
}
