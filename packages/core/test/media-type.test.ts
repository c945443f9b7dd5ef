import { describe, expect, it } from 'vitest';
import { formatMediaType, normalizeMediaType, parseMediaType } from '../src/media-type.js';

describe('parseMediaType (RFC 9110 §8.3.1)', () => {
  it('reads type, subtype and parameters, lowercasing the names but not the values', () => {
    const parsed = parseMediaType('Text/HTML ; Charset="UTF-8";format=Flowed');
    expect(parsed).toMatchObject({ type: 'text', subtype: 'html', essence: 'text/html' });
    expect([...parsed!.parameters]).toEqual([
      ['charset', 'UTF-8'],
      ['format', 'Flowed'],
    ]);
  });

  it('unescapes quoted-pairs and accepts empty parameters and surrounding whitespace', () => {
    expect([...parseMediaType('a/b; x="q\\"uo\\\\te"')!.parameters]).toEqual([['x', 'q"uo\\te']]);
    expect(parseMediaType(' a/b;; c=d ;')?.essence).toBe('a/b');
    expect(parseMediaType('application/vnd.api+json')?.essence).toBe('application/vnd.api+json');
  });

  it.each([
    ['a comma list (browsers take the last member)', 'image/png,text/html'],
    ['a comma after a semicolon', 'image/png;,text/html'],
    ['a comma after a parameter', 'image/png; a=b, text/html'],
    ['a comma in an unquoted value', 'image/png; a=b,text/html'],
    ['no subtype', 'image'],
    ['an empty subtype', 'image/'],
    ['two slashes', 'image/png/x'],
    ['a space inside the type', 'ima ge/png'],
    ['a parameter without a value', 'text/plain; charset'],
    ['a parameter with an empty value', 'text/plain; charset='],
    ['a separator in a token', 'text/plain; a=b@c'],
    ['an unterminated quoted string', 'text/plain; a="b'],
    ['text after a quoted string', 'text/plain; a="b"c'],
    ['the same parameter twice', 'text/plain; charset=utf-8; charset=latin1'],
    ['CR LF', 'text/plain\r\nX-Evil: 1'],
    ['non-ASCII', 'text/plain; a="é"'],
    ['NUL', 'text/pl\u0000ain'],
    ['the empty string', ''],
    ['more than 255 characters', `a/${'b'.repeat(254)}`],
  ])('refuses %s', (_label, value) => {
    expect(parseMediaType(value)).toBeUndefined();
  });
});

describe('formatMediaType / normalizeMediaType', () => {
  it('writes the canonical form: lowercase type, "; " between parameters, quotes only where needed', () => {
    expect(normalizeMediaType('Image/PNG')).toBe('image/png');
    expect(normalizeMediaType('text/plain;charset="utf-8"')).toBe('text/plain; charset=utf-8');
    expect(normalizeMediaType('a/b;;x="two words";y="q\\"t"')).toBe('a/b; x="two words"; y="q\\"t"');
  });

  it('round-trips: the canonical form parses to the same media type', () => {
    for (const value of ['a/b; x="two words"; y="q\\"t\\\\"', 'multipart/form-data; boundary="(odd) boundary"']) {
      const parsed = parseMediaType(value)!;
      expect(parseMediaType(formatMediaType(parsed))).toEqual(parsed);
    }
  });

  it('is undefined for an invalid value', () => {
    expect(normalizeMediaType('image/png;,text/html')).toBeUndefined();
  });
});
