import { GraphQLError } from 'graphql';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { ErrorCode } from '../errors.ts';

/**
 * Deepest nesting of braces, brackets and parentheses a GraphQL document may have. Far beyond any real
 * operation of this schema (MAX_QUERY_DEPTH bounds selections at 10), far below where graphql-js's recursive
 * parser and validators run out of stack (a few thousand).
 */
export const MAX_DOCUMENT_NESTING = 64;

/**
 * Whether the document nests `{`, `[` or `(` deeper than `max`, outside strings and comments. One linear pass
 * over the text, before any recursion happens.
 */
export function nestsDeeperThan(source: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < source.length; i++) {
    const char = source[i];
    if (char === '{' || char === '[' || char === '(') {
      if (++depth > max) return true;
    } else if (char === '}' || char === ']' || char === ')') {
      depth--;
    } else if (char === '#') {
      while (i < source.length && source[i] !== '\n' && source[i] !== '\r') i++;
    } else if (char === '"') {
      if (source.startsWith('"""', i)) {
        // A block string ends at the first """ that is not escaped (\""").
        let end = i + 3;
        while (end < source.length && !(source.startsWith('"""', end) && source[end - 1] !== '\\')) end++;
        i = end + 2;
      } else {
        for (i++; i < source.length && source[i] !== '"' && source[i] !== '\n'; i++) if (source[i] === '\\') i++;
      }
    }
  }
  return false;
}

function tooDeep(): GraphQLError {
  return new GraphQLError(`The document nests deeper than ${MAX_DOCUMENT_NESTING} levels.`, {
    extensions: { code: 'GRAPHQL_VALIDATION_FAILED', http: { status: 400 } },
  });
}

/**
 * Refuses a document nested too deep before graphql-js parses it, as a validation error (HTTP 400), for
 * HTTP and WebSocket alike (both parse through Yoga's enveloped `parse`). Nested thousands deep, the
 * recursive parser and validation rules would otherwise overflow the stack: an HTTP 500.
 */
export const useDocumentNestingLimit: Plugin = {
  onParse: ({ params }) => {
    const { source } = params;
    const text: unknown = typeof source === 'string' ? source : (source as { body?: unknown } | undefined)?.body;
    if (typeof text === 'string' && nestsDeeperThan(text, MAX_DOCUMENT_NESTING)) throw tooDeep();
  },
};

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function notUtf8(where: string): GraphQLError {
  return new GraphQLError(`${where}: must be valid UTF-8`, {
    extensions: { code: ErrorCode.INVALID_INPUT, field: where, rule: 'format', http: { status: 400 } },
  });
}

/**
 * Whether a URL's query string percent-decodes to well-formed UTF-8. URLSearchParams turns `%FF` into U+FFFD
 * silently, which would make two different ids one.
 */
export function isUtf8QueryString(search: string): boolean {
  try {
    decodeURIComponent(search.replaceAll('+', ' '));
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuses a request whose JSON body or query string is not valid UTF-8 (`INVALID_INPUT`, rule `format`,
 * HTTP 400). A lenient decode would store U+FFFD for every bad byte, so two different ids could collide.
 */
export const useUtf8Guard: Plugin = {
  onRequestParse: ({ request, url, setRequestParser }) => {
    if (!isUtf8QueryString(url.search)) throw notUtf8('query string');
    const type = request.headers.get('content-type') ?? '';
    if (request.method !== 'POST' || !/^application\/(graphql\+)?json\b/i.test(type)) return;
    setRequestParser(async (request) => {
      let text: string;
      try {
        text = strictUtf8.decode(await request.arrayBuffer());
      } catch {
        throw notUtf8('body');
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new GraphQLError('POST body sent invalid JSON.', {
          extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
        });
      }
      if (body === null || typeof body !== 'object') {
        throw new GraphQLError(
          `POST body is expected to be object but received ${body === null ? 'null' : typeof body}`,
          {
            extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
          },
        );
      }
      // Only the shape so far: Yoga's own parameter check (query a string, variables an object…) runs next.
      return body as GraphQLParams;
    });
  },
};
