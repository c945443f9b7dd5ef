import { describe, expect, it } from 'vitest';
import {
  parseAcquireBody,
  parseContentDigestSha256,
  parseCrc32Header,
  parseKeepaliveBody,
  parseListParams,
  parseReleaseBody,
  parseSelectorParams,
  parseUploadParams,
  queryBoolean,
  resolveRawContentType,
} from '../../src/http/params.js';

const LEASE = { 'X-Lease-ID': 'lease-1', 'X-Txn-ID': 'txn-1', 'X-Fencing-Token': '3' };
const ID = '0190a0a0-0000-7000-8000-0000000000aa';

function request(query: string, headers: Record<string, string> = {}, method = 'POST'): [Request, URL] {
  const url = new URL(`http://test.local/v1/attachments?${query}`);
  return [new Request(url, { method, headers }), url];
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('parseUploadParams', () => {
  it('reports problems in the documented order, one fix at a time', () => {
    // Each step fixes the previous error and reveals the next check.
    const steps: [string, Record<string, string>, string | undefined][] = [
      ['namespace=BAD&name=..&max_bytes=x', LEASE, 'missing_key'],
      ['key=BAD&namespace=BAD&max_bytes=x', LEASE, 'missing_name'],
      ['key=BAD&namespace=BAD&name=..&max_bytes=x', {}, 'invalid_namespace'],
      ['key=BAD&name=..&max_bytes=x', {}, 'invalid_key'],
      ['key=a&name=..&max_bytes=x', {}, 'invalid_name'],
      ['key=a&name=n&max_bytes=x', {}, 'missing_lease'],
      ['key=a&name=n&max_bytes=x', { 'X-Lease-ID': 'l' }, 'missing_txn'],
      ['key=a&name=n&max_bytes=x', { 'X-Lease-ID': 'l', 'X-Txn-ID': 't' }, 'missing_fencing_token'],
      ['key=a&name=n&max_bytes=x', { ...LEASE, 'X-Fencing-Token': '1e3' }, 'invalid_fencing_token'],
      ['key=a&name=n&max_bytes=x', LEASE, 'invalid_max_bytes'],
      ['key=a&name=n&max_bytes=10&content_type=bogus', LEASE, 'invalid_content_type'],
      ['key=a&name=n&max_bytes=10', { ...LEASE, 'X-Attachment-CRC32': '123' }, 'invalid_body'],
      ['key=a&name=n&max_bytes=10', { ...LEASE, 'Content-Digest': 'sha-256=:AAAA:' }, 'invalid_body'],
      ['key=a&name=n&max_bytes=10', LEASE, undefined],
    ];
    for (const [query, headers, code] of steps) {
      expect(codeOf(() => parseUploadParams(...request(query, headers))), query).toBe(code);
    }
  });

  it('rejects non-integer, negative and fractional fencing tokens and max_bytes', () => {
    for (const token of ['-1', '1.5', 'abc', '0x1', '99999999999999999999']) {
      expect(codeOf(() => parseUploadParams(...request('key=a&name=n', { ...LEASE, 'X-Fencing-Token': token }))), token).toBe(
        'invalid_fencing_token',
      );
    }
    for (const maxBytes of ['-1', '1.5', '1e3', 'abc']) {
      expect(codeOf(() => parseUploadParams(...request(`key=a&name=n&max_bytes=${maxBytes}`, LEASE))), maxBytes).toBe('invalid_max_bytes');
    }
  });

  it('collects the keyed upload', () => {
    const params = parseUploadParams(
      ...request('key=a/b&namespace=ns&name=f.txt&max_bytes=0&prevent_overwrite=1&content_type=text/plain', {
        ...LEASE,
        'X-Attachment-CRC32': 'ABCDEF01',
        'Content-Length': '12',
      }),
    );
    expect(params).toEqual({
      scope: { namespace: 'ns', key: 'a/b' },
      credentials: { namespace: 'ns', key: 'a/b', leaseId: 'lease-1', txnId: 'txn-1', fencingToken: 3 },
      multipart: false,
      name: 'f.txt',
      contentType: 'text/plain',
      maxBytes: 0,
      preventOverwrite: true,
      expectedSize: 12,
      expectedCrc32: 'abcdef01',
    });
  });

  it('is the document face without key and lease headers, and needs a key with them', () => {
    expect(parseUploadParams(...request('name=doc.pdf')).credentials).toBeUndefined();
    expect(codeOf(() => parseUploadParams(...request('name=doc.pdf', { 'X-Lease-ID': 'l' })))).toBe('missing_key');
    expect(codeOf(() => parseUploadParams(...request('')))).toBe('missing_name');
  });

  it('lets multipart go without a name and ignores whole-body checksums for it', () => {
    const params = parseUploadParams(
      ...request('key=a', { ...LEASE, 'Content-Type': 'multipart/form-data; boundary=x', 'X-Attachment-CRC32': '00000000' }),
    );
    expect(params.multipart).toBe(true);
    expect(params.name).toBeUndefined();
    expect(params.expectedCrc32).toBeUndefined();
  });
});

describe('parseSelectorParams', () => {
  const selector = (query: string, headers: Record<string, string> = {}, lease: 'optional' | 'required' = 'optional') =>
    parseSelectorParams(...request(query, headers, 'GET'), lease);

  it('needs a name or id, and a key unless reading by id alone', () => {
    expect(codeOf(() => selector(''))).toBe('missing_name');
    expect(codeOf(() => selector('name=x'))).toBe('missing_key');
    expect(codeOf(() => selector('key=a'))).toBe('missing_name');
    expect(selector(`id=${ID.toUpperCase()}`)).toEqual({ selector: { id: ID } });
    expect(codeOf(() => selector(`id=${ID}`, LEASE, 'required'))).toBe('missing_key');
  });

  it('answers a malformed id like an unknown one', () => {
    expect(codeOf(() => selector('id=nope'))).toBe('attachment_not_found');
    expect(codeOf(() => selector('key=a&id=../../etc'))).toBe('attachment_not_found');
  });

  it('prefers id over name and reads through the lease unless public', () => {
    expect(selector(`key=a&name=x&id=${ID}`).selector).toEqual({ id: ID });
    expect(selector('key=a&name=x', LEASE).credentials?.leaseId).toBe('lease-1');
    expect(selector('key=a&name=x&public=true', LEASE).credentials).toBeUndefined();
    expect(selector('key=a&name=x&public=1', LEASE).credentials).toBeUndefined();
    expect(selector('key=a&name=x&public=yes', LEASE).credentials?.leaseId).toBe('lease-1');
    expect(codeOf(() => selector('key=a&name=x', {}, 'required'))).toBe('missing_lease');
  });
});

describe('parseListParams', () => {
  it('needs a key and, for deletes, a lease', () => {
    expect(codeOf(() => parseListParams(...request('', {}, 'GET'), 'optional'))).toBe('missing_key');
    expect(parseListParams(...request('key=a', {}, 'GET'), 'optional')).toEqual({ scope: { namespace: 'default', key: 'a' } });
    expect(codeOf(() => parseListParams(...request('key=a', {}, 'DELETE'), 'required'))).toBe('missing_lease');
  });
});

describe('lease call bodies', () => {
  const headers = new Headers({ 'X-Fencing-Token': '4' });

  it('names the body fields in its messages (ttl_seconds, block_seconds, txn_id), not the TypeScript ones', () => {
    const messageOf = (body: Record<string, unknown>) => {
      try {
        parseAcquireBody(body);
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    };
    expect(messageOf({ key: 'a', owner: 'o', ttl_seconds: 0 })).toBe('ttl_seconds must be a number from 0.001 (1 ms) to 604800 (7 days)');
    expect(messageOf({ key: 'a', owner: 'o', ttl_seconds: 1, block_seconds: -2 })).toMatch(/^block_seconds must be/);
    expect(messageOf({ key: 'a', owner: 'o', ttl_seconds: 1, txn_id: 'a b' })).toMatch(/^txn_id must be/);
  });

  it('validates acquire fields: key, namespace, owner, ttl, block, txn', () => {
    const valid = { key: 'a', owner: 'me', ttl_seconds: 1.5 };
    expect(parseAcquireBody(valid)).toEqual({ namespace: 'default', key: 'a', owner: 'me', ttlSeconds: 1.5, blockSeconds: -1 });
    const cases: [Record<string, unknown>, string][] = [
      [{ owner: 'me', ttl_seconds: 1 }, 'missing_key'],
      [{ ...valid, namespace: 'UP', key: '' }, 'missing_key'],
      [{ ...valid, namespace: 'UP' }, 'invalid_namespace'],
      [{ ...valid, namespace: 7 }, 'invalid_namespace'],
      [{ ...valid, key: 'a/../b' }, 'invalid_key'],
      [{ ...valid, key: ['a'] }, 'invalid_key'],
      [{ ...valid, owner: '' }, 'invalid_body'],
      [{ ...valid, ttl_seconds: 0 }, 'invalid_body'],
      [{ ...valid, ttl_seconds: Number.NaN }, 'invalid_body'],
      [{ ...valid, block_seconds: -2 }, 'invalid_body'],
      [{ ...valid, block_seconds: 1.5 }, 'invalid_body'],
      [{ ...valid, txn_id: 5 }, 'invalid_body'],
      // The engine's rules, checked here so HTTP answers invalid_body, never the TS API's invalid_argument.
      [{ ...valid, owner: '   ' }, 'invalid_body'],
      [{ ...valid, owner: 'o'.repeat(257) }, 'invalid_body'],
      [{ ...valid, txn_id: '../x' }, 'invalid_body'],
      [{ ...valid, txn_id: 't'.repeat(65) }, 'invalid_body'],
    ];
    for (const [body, code] of cases) expect(codeOf(() => parseAcquireBody(body)), JSON.stringify(body)).toBe(code);
    expect(parseAcquireBody({ ...valid, block_seconds: 0, txn_id: 't1' })).toMatchObject({ blockSeconds: 0, txnId: 't1' });
  });

  it('reads keepalive and release credentials from the body, the fencing token from its header', () => {
    const body = { key: 'a', lease_id: 'l', txn_id: 't', ttl_seconds: 9 };
    expect(parseKeepaliveBody(body, headers)).toEqual({
      credentials: { namespace: 'default', key: 'a', leaseId: 'l', txnId: 't', fencingToken: 4 },
      ttlSeconds: 9,
    });
    expect(codeOf(() => parseKeepaliveBody({ ...body, lease_id: undefined }, headers))).toBe('missing_lease');
    expect(codeOf(() => parseKeepaliveBody({ ...body, txn_id: '' }, headers))).toBe('missing_txn');
    expect(codeOf(() => parseKeepaliveBody(body, new Headers()))).toBe('missing_fencing_token');
    expect(codeOf(() => parseKeepaliveBody({ ...body, ttl_seconds: -1 }, headers))).toBe('invalid_body');
    expect(parseReleaseBody({ ...body, rollback: true }, headers).rollback).toBe(true);
    expect(parseReleaseBody(body, headers).rollback).toBe(false);
    expect(codeOf(() => parseReleaseBody({ ...body, rollback: 1 }, headers))).toBe('invalid_body');
  });
});

describe('small parsers', () => {
  it('reads query booleans as true/1 only', () => {
    expect([queryBoolean('true'), queryBoolean('1'), queryBoolean('TRUE'), queryBoolean('yes'), queryBoolean(null)]).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it('parses X-Attachment-CRC32 as 8 hex digits', () => {
    expect(parseCrc32Header('DEADbeef')).toBe('deadbeef');
    expect(parseCrc32Header(null)).toBeUndefined();
    for (const bad of ['deadbee', 'deadbeef0', 'xyzxyzxy']) expect(codeOf(() => parseCrc32Header(bad))).toBe('invalid_body');
  });

  it('extracts sha-256 from Content-Digest, ignoring other algorithms', () => {
    const digest = Buffer.alloc(32, 0xab).toString('base64');
    expect(parseContentDigestSha256(`sha-256=:${digest}:`)).toBe('ab'.repeat(32));
    expect(parseContentDigestSha256(`sha-512=:AAAA:, SHA-256=:${digest}:;p=1`)).toBe('ab'.repeat(32));
    expect(parseContentDigestSha256('sha-512=:AAAA:')).toBeUndefined();
    expect(parseContentDigestSha256(`sha-256=:${digest}:, sha-256=:${digest}:`)).toBe('ab'.repeat(32));
    const other = Buffer.alloc(32, 0xcd).toString('base64');
    expect(codeOf(() => parseContentDigestSha256(`sha-256=:${digest}:, sha-256=:${other}:`))).toBe('checksum_mismatch');
    for (const bad of ['sha-256=AAAA', 'sha-256=:AAAA:', 'sha-256=:!!:']) {
      expect(codeOf(() => parseContentDigestSha256(bad)), bad).toBe('invalid_body');
    }
  });

  it('reads the request Content-Type before anything else (it decides whether name is required)', () => {
    expect(codeOf(() => parseUploadParams(...request('namespace=BAD', { 'Content-Type': 'multipart/form-data, text/html' })))).toBe(
      'invalid_content_type',
    );
    expect(codeOf(() => parseUploadParams(...request('key=a', { ...LEASE, 'Content-Type': 'multipart/form-data; boundary=b' })))).toBeUndefined();
    expect(codeOf(() => parseUploadParams(...request('key=a&name=n', { ...LEASE, 'Content-Type': ' ' })))).toBeUndefined();
  });

  it('resolves a raw content type: query, else request unless a form encoding, else octet-stream', () => {
    expect(resolveRawContentType('image/png', 'text/plain')).toBe('image/png');
    expect(resolveRawContentType(undefined, 'text/plain; charset=utf-8')).toBe('text/plain; charset=utf-8');
    expect(resolveRawContentType(undefined, 'application/x-www-form-urlencoded')).toBe('application/octet-stream');
    expect(resolveRawContentType(undefined, 'multipart/form-data; boundary=x')).toBe('application/octet-stream');
    expect(resolveRawContentType(undefined, null)).toBe('application/octet-stream');
  });
});
