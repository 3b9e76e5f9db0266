import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Whether an `Authorization` value carries the admin token, compared in constant time (over SHA-256
 * digests, which have equal length whatever was sent), so response timing does not reveal how much of a
 * guess was right. An empty token leaves admin operations open (development).
 */
export function makeAdminCheck(token: string): (authorization: unknown) => boolean {
  if (token === '') return () => true;
  const expected = digest(`Bearer ${token}`);
  return (authorization) => typeof authorization === 'string' && timingSafeEqual(digest(authorization), expected);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
