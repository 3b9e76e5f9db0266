import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode } from '../errors.ts';

/**
 * Refuses a request body larger than `maxBytes` with 413 before the gateway reads it: a declared
 * `content-length` is checked at once (Node's parser never delivers more than it declares); a chunked body is
 * counted while it streams, held in memory only up to the cap, and handed on as a buffer.
 * Resolves `true` when the request may go on, `false` when it was answered.
 */
export async function limitBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<boolean> {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return true;
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    if (Number(declared) <= maxBytes) return true;
    refuse(res, maxBytes);
    return false;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      refuse(res, maxBytes);
      return false;
    }
    chunks.push(chunk);
  }
  // Yoga's Node adapter reads a request's `body` when one is set, instead of the (now consumed) stream.
  Object.assign(req, { body: Buffer.concat(chunks) });
  return true;
}

function refuse(res: ServerResponse, maxBytes: number): void {
  const message = `request body is larger than ${maxBytes} bytes`;
  // The rest of the body is not read: close the connection once the answer is out.
  res
    .writeHead(413, { 'content-type': 'application/json', connection: 'close' })
    .end(JSON.stringify({ error: { code: ErrorCode.PAYLOAD_TOO_LARGE, message } }));
}
