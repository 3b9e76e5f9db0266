import { describe, expect, it } from 'vitest';
import { isUtf8QueryString, nestsDeeperThan } from '../../src/http/input-guards.ts';
import { checkJson, parseIsoDateTime } from '../../src/services/validation.ts';

describe('parseIsoDateTime', () => {
  it.each([
    ['2026-02-28T10:15:00Z', '2026-02-28T10:15:00.000Z'],
    ['2024-02-29T23:59:59.999Z', '2024-02-29T23:59:59.999Z'],
    ['2026-11-28T10:15+01:00', '2026-11-28T09:15:00.000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
  ])('when it is %s then it is that instant', (text, iso) => {
    expect(parseIsoDateTime(text)?.toISOString()).toBe(iso);
  });

  it.each([
    '2026-02-30T10:00:00Z',
    '2025-02-29T10:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T10:60:00Z',
    '2026-01-01',
    'March 3',
    '12',
  ])('when it is %s then it is not a date-time', (text) => {
    expect(parseIsoDateTime(text)).toBeUndefined();
  });
});

describe('nestsDeeperThan', () => {
  it('when braces nest past the bound then it says so', () => {
    expect(nestsDeeperThan(`${'{'.repeat(5)}${'}'.repeat(5)}`, 4)).toBe(true);
  });

  it('when the nesting stays within the bound then it does not', () => {
    expect(nestsDeeperThan('{ a { b(x: [1, [2]]) { c } } }', 5)).toBe(false);
  });

  it.each([
    ['a string', '{ a(x: "{{{{{{\\"{{{{") }'],
    ['a block string', '{ a(x: """{{{{{{ \\""" {{{{""") }'],
    ['a comment', '{ a # {{{{{{{{\n }'],
  ])('when braces stand in %s then they do not count', (_name, source) => {
    expect(nestsDeeperThan(source, 2)).toBe(false);
  });
});

describe('isUtf8QueryString', () => {
  it('when a percent escape is not UTF-8 then it is refused', () => {
    expect(isUtf8QueryString('?user_id=u%FF')).toBe(false);
  });

  it('when escapes are UTF-8 then it is accepted', () => {
    expect(isUtf8QueryString('?user_id=%C3%A9+x&k=3')).toBe(true);
  });
});

describe('checkJson', () => {
  it('when a document is 10 deep then it passes', () => {
    const deep = JSON.parse(`${'['.repeat(10)}${']'.repeat(10)}`);

    expect(checkJson('context', deep)).toEqual(deep);
  });

  it('when a document is 11 deep then it fails with rule depth and the path', () => {
    const deep = JSON.parse(`${'['.repeat(11)}${']'.repeat(11)}`);

    expect(() => checkJson('context', deep)).toThrow(
      expect.objectContaining({ field: 'context[0][0][0][0][0][0][0][0][0][0]', rule: 'depth' }),
    );
  });
});
