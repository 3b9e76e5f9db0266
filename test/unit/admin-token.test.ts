import { describe, expect, it } from 'vitest';
import { makeAdminCheck } from '../../src/http/admin-token.ts';

describe('makeAdminCheck', () => {
  it('when the header carries the token then it passes; any other value, shorter, longer or not a string, fails', () => {
    const isAdmin = makeAdminCheck('s3cret-token');

    const verdicts = [
      isAdmin('Bearer s3cret-token'),
      isAdmin('Bearer s3cret-toke'),
      isAdmin('Bearer s3cret-token-and-more'),
      isAdmin('s3cret-token'),
      isAdmin(undefined),
      isAdmin(42),
    ];

    expect(verdicts).toEqual([true, false, false, false, false, false]);
  });

  it('when no token is configured then admin operations are open (development)', () => {
    const isAdmin = makeAdminCheck('');

    const verdict = isAdmin(undefined);

    expect(verdict).toBe(true);
  });
});
