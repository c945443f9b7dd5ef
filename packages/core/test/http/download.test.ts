import { describe, expect, it } from 'vitest';
import {
  attachmentHeaders,
  contentDisposition,
  encodeHeaderName,
  ifNoneMatchMatches,
  parseRange,
  resolveRange,
} from '../../src/http/download.js';
import type { Attachment } from '../../src/types.js';

describe('parseRange', () => {
  it('accepts the three single-range forms', () => {
    expect(parseRange('bytes=0-499')).toEqual({ kind: 'from', first: 0, last: 499 });
    expect(parseRange('bytes=500-')).toEqual({ kind: 'from', first: 500 });
    expect(parseRange('bytes=-20')).toEqual({ kind: 'suffix', length: 20 });
    expect(parseRange('BYTES= 3-4 ')).toEqual({ kind: 'from', first: 3, last: 4 });
  });

  it('ignores anything else', () => {
    for (const header of [null, '', 'bytes=', 'bytes=-', 'bytes=5-2', 'bytes=0-1,2-3', 'items=0-1', 'bytes=a-b', 'bytes 0-1', 'bytes=1.5-2']) {
      expect(parseRange(header), String(header)).toBeUndefined();
    }
  });
});

describe('resolveRange', () => {
  it('clamps the end, converts suffixes and spots unsatisfiable starts', () => {
    expect(resolveRange({ kind: 'from', first: 2, last: 100 }, 10)).toEqual({ start: 2, end: 9 });
    expect(resolveRange({ kind: 'suffix', length: 3 }, 10)).toEqual({ start: 7, end: 9 });
    expect(resolveRange({ kind: 'suffix', length: 30 }, 10)).toEqual({ start: 0, end: 9 });
    expect(resolveRange({ kind: 'from', first: 10 }, 10)).toBe('unsatisfiable');
    expect(resolveRange({ kind: 'suffix', length: 0 }, 10)).toBe('unsatisfiable');
    expect(resolveRange({ kind: 'from', first: 0 }, 0)).toBe('unsatisfiable');
    expect(resolveRange({ kind: 'suffix', length: 5 }, 0)).toBe('full');
  });
});

describe('ifNoneMatchMatches', () => {
  const etag = '"abc"';
  it('compares weakly against a list or *', () => {
    expect(ifNoneMatchMatches('"abc"', etag)).toBe(true);
    expect(ifNoneMatchMatches('W/"abc"', etag)).toBe(true);
    expect(ifNoneMatchMatches('"x", "abc"', etag)).toBe(true);
    expect(ifNoneMatchMatches(' * ', etag)).toBe(true);
    expect(ifNoneMatchMatches('"abcd"', etag)).toBe(false);
    expect(ifNoneMatchMatches('abc', etag)).toBe(false);
    expect(ifNoneMatchMatches(null, etag)).toBe(false);
  });
});

describe('contentDisposition', () => {
  it('keeps plain ASCII names as they are', () => {
    expect(contentDisposition('report-2024.pdf', true)).toBe(`inline; filename="report-2024.pdf"; filename*=UTF-8''report-2024.pdf`);
  });

  it('replaces non-ASCII, quotes, backslashes and percent in the fallback and encodes filename*', () => {
    expect(contentDisposition('naïve "q" 100%.txt', false)).toBe(
      `attachment; filename="na_ve _q_ 100_.txt"; filename*=UTF-8''na%C3%AFve%20%22q%22%20100%25.txt`,
    );
    expect(contentDisposition('a\\b', false)).toContain('filename="a_b"');
  });

  it('replaces a whole emoji with one underscore and encodes RFC 8187 specials', () => {
    expect(contentDisposition("😀(it's)*.png", false)).toBe(
      `attachment; filename="_(it's)*.png"; filename*=UTF-8''%F0%9F%98%80%28it%27s%29%2A.png`,
    );
  });

  it('never lets CR, LF or other controls into the header', () => {
    const value = contentDisposition('evil\r\nSet-Cookie: x=1\u0000.txt', false);
    expect(value).not.toMatch(/[\r\n\u0000]/);
    expect(() => new Headers({ 'Content-Disposition': value })).not.toThrow();
    expect(value).toContain('filename="evil__Set-Cookie: x=1_.txt"');
  });

  it('survives lone surrogates', () => {
    expect(() => contentDisposition('bad\ud800name', false)).not.toThrow();
    expect(encodeHeaderName('bad\ud800name')).toBe('bad%EF%BF%BDname');
  });
});

describe('attachmentHeaders', () => {
  const attachment: Attachment = {
    id: '0190a0a0-0000-7000-8000-0000000000aa',
    name: 'ä b.svg',
    namespace: 'default',
    key: 'k',
    size: 12,
    contentType: 'image/svg+xml',
    extension: 'svg',
    crc32: '01020304',
    sha256: 'f'.repeat(64),
    createdAt: new Date(0),
    updatedAt: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
  };

  it('downloads SVG (script-capable) instead of rendering it, and percent-encodes the name', () => {
    const headers = attachmentHeaders(attachment, { leaseRead: false });
    expect(headers.get('Content-Disposition')).toMatch(/^attachment; /);
    expect(headers.get('Content-Security-Policy')).toBeNull();
    expect(headers.get('X-Attachment-Name')).toBe('%C3%A4%20b.svg');
    expect(headers.get('Last-Modified')).toBe('Tue, 02 Jan 2024 03:04:05 GMT');
    expect(headers.get('ETag')).toBe(`"${'f'.repeat(64)}"`);
    expect(headers.get('Cache-Control')).toBe('no-cache');
  });

  it('renders allow-listed types inline inside a CSP sandbox, private for lease reads', () => {
    const headers = attachmentHeaders({ ...attachment, contentType: 'IMAGE/PNG; x=y' }, { leaseRead: true });
    expect(headers.get('Content-Disposition')).toMatch(/^inline; /);
    expect(headers.get('Content-Security-Policy')).toBe('sandbox');
    expect(headers.get('Cache-Control')).toBe('private, no-cache');
  });

  it('falls back to octet-stream for a stored type that is not a valid header', () => {
    const headers = attachmentHeaders({ ...attachment, contentType: 'text/plain\r\nX: y' }, { leaseRead: false });
    expect(headers.get('Content-Type')).toBe('application/octet-stream');
  });
});
