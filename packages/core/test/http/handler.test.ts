import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '../../src/errors.js';
import { bytes, multipartBody } from './helpers.js';
import { startServer, type TestServer } from './server.js';

interface LeaseJson {
  lease_id: string;
  txn_id: string;
  key: string;
  namespace: string;
  owner: string;
  expires_at_unix: number;
  fencing_token: number;
}

const BOUNDARY = 'xYzBoundary42';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;
let keyCounter = 0;
const freshKey = (prefix = 'doc') => `${prefix}/k${++keyCounter}`;

function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
function sha256Base64(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('base64');
}

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

function url(path: string, query: Record<string, string | undefined> = {}): string {
  const search = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const text = search.toString();
  return `${server.base}${path}${text ? `?${text}` : ''}`;
}

async function postJson(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url(path), { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

async function acquire(key: string, extra: Record<string, unknown> = {}): Promise<LeaseJson> {
  const response = await postJson('/acquire', { key, owner: 'tester', ttl_seconds: 60, ...extra });
  expect(response.status).toBe(200);
  return (await response.json()) as LeaseJson;
}

function leaseHeaders(lease: LeaseJson): Record<string, string> {
  return { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id, 'X-Fencing-Token': String(lease.fencing_token) };
}

async function release(lease: LeaseJson, rollback = false): Promise<Response> {
  return postJson(
    '/release',
    { key: lease.key, namespace: lease.namespace, lease_id: lease.lease_id, txn_id: lease.txn_id, rollback },
    { 'X-Fencing-Token': String(lease.fencing_token) },
  );
}

async function uploadRaw(
  lease: LeaseJson,
  name: string,
  body: string | Uint8Array<ArrayBuffer>,
  query: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url('/attachments', { key: lease.key, name, ...query }), {
    method: 'POST',
    headers: { ...leaseHeaders(lease), ...headers },
    body,
  });
}

async function expectError(response: Response, code: string): Promise<Record<string, unknown>> {
  const body = (await response.json()) as Record<string, unknown>;
  expect({ status: response.status, error: body.error }).toEqual({ status: ERROR_STATUS[code as keyof typeof ERROR_STATUS], error: code });
  expect(response.headers.get('Content-Type')).toBe('application/json; charset=utf-8');
  expect(typeof body.detail).toBe('string');
  return body;
}

describe('lifecycle over HTTP', () => {
  it('stages an upload under the lease, hides it from public reads, and commits it on release', async () => {
    const lease = await acquire(freshKey());
    expect(lease).toMatchObject({ owner: 'tester', namespace: 'default' });
    const content = 'hello, attache';
    const uploaded = await uploadRaw(lease, 'greeting.txt', content, {}, { 'Content-Type': 'text/plain' });
    expect(uploaded.status).toBe(200);
    const { attachment, noop } = (await uploaded.json()) as { attachment: Record<string, unknown>; noop: boolean };
    expect(noop).toBe(false);
    expect(attachment).toMatchObject({
      name: 'greeting.txt',
      key: lease.key,
      namespace: 'default',
      size: content.length,
      content_type: 'text/plain',
      extension: 'txt',
      sha256: sha256Hex(content),
    });
    expect(attachment.crc32).toMatch(/^[0-9a-f]{8}$/);
    expect(Number.isInteger(attachment.created_at_unix)).toBe(true);
    expect(uploaded.headers.get('X-Attachment-ID')).toBe(attachment.id);
    expect(uploaded.headers.get('X-Fencing-Token')).toBe(String(lease.fencing_token));

    const underLease = await fetch(url('/attachments', { key: lease.key }), { headers: leaseHeaders(lease) });
    expect(((await underLease.json()) as { attachments: unknown[] }).attachments).toHaveLength(1);
    const publicList = await fetch(url('/attachments', { key: lease.key }));
    expect(await publicList.json()).toEqual({ namespace: 'default', key: lease.key, attachments: [] });
    const publicFlag = await fetch(url('/attachments', { key: lease.key, public: 'true' }), { headers: leaseHeaders(lease) });
    expect(((await publicFlag.json()) as { attachments: unknown[] }).attachments).toEqual([]);

    const released = await release(lease);
    expect(released.status).toBe(200);
    expect(await released.json()).toEqual({ released: true });
    expect((await release(lease)).status).toBe(200); // idempotent

    const committed = (await (await fetch(url('/attachments', { key: lease.key }))).json()) as { attachments: unknown[] };
    expect(committed.attachments).toEqual([attachment]);

    const download = await fetch(url('/attachment', { key: lease.key, name: 'greeting.txt' }));
    expect(download.status).toBe(200);
    expect(await download.text()).toBe(content);
    expect(download.headers.get('Content-Type')).toBe('text/plain');
    expect(download.headers.get('Content-Length')).toBe(String(content.length));
    expect(download.headers.get('ETag')).toBe(`"${sha256Hex(content)}"`);
    expect(download.headers.get('X-Attachment-SHA256')).toBe(sha256Hex(content));
    expect(download.headers.get('X-Attachment-CRC32')).toBe(attachment.crc32);
    expect(download.headers.get('X-Attachment-ID')).toBe(attachment.id);
    expect(download.headers.get('X-Attachment-Size')).toBe(String(content.length));
    expect(download.headers.get('Accept-Ranges')).toBe('bytes');
    expect(download.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(download.headers.get('Content-Disposition')).toBe(`inline; filename="greeting.txt"; filename*=UTF-8''greeting.txt`);
    expect(download.headers.get('Content-Security-Policy')).toBe('sandbox');
    expect(new Date(download.headers.get('Last-Modified')!).getTime()).toBeGreaterThan(0);

    const byId = await fetch(url('/attachment', { id: String(attachment.id) }));
    expect(await byId.text()).toBe(content);
  });

  it('reads staged bytes through the lease with private caching, and HEAD sends headers only', async () => {
    const lease = await acquire(freshKey());
    await uploadRaw(lease, 'notes.bin', bytes('staged!')); // a byte body: fetch sends no Content-Type
    const read = await fetch(url('/attachment', { key: lease.key, name: 'notes.bin' }), { headers: leaseHeaders(lease) });
    expect(await read.text()).toBe('staged!');
    expect(read.headers.get('Cache-Control')).toBe('private, no-cache');
    expect(read.headers.get('Content-Disposition')).toMatch(/^attachment; /);
    const head = await fetch(url('/attachment', { key: lease.key, name: 'notes.bin' }), { method: 'HEAD', headers: leaseHeaders(lease) });
    expect(head.status).toBe(200);
    expect(head.headers.get('Content-Length')).toBe('7');
    expect(await head.text()).toBe('');
    const publicRead = await fetch(url('/attachment', { key: lease.key, name: 'notes.bin' }));
    await expectError(publicRead, 'attachment_not_found');
  });

  it('rolls back: staged uploads vanish', async () => {
    const lease = await acquire(freshKey());
    await uploadRaw(lease, 'gone.txt', 'bye');
    expect((await release(lease, true)).status).toBe(200);
    const list = (await (await fetch(url('/attachments', { key: lease.key }))).json()) as { attachments: unknown[] };
    expect(list.attachments).toEqual([]);
  });

  it('keeps a lease alive and reports the new expiry', async () => {
    const lease = await acquire(freshKey(), { ttl_seconds: 5 });
    const response = await postJson(
      '/keepalive',
      { key: lease.key, lease_id: lease.lease_id, txn_id: lease.txn_id, ttl_seconds: 600 },
      { 'X-Fencing-Token': String(lease.fencing_token) },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { expires_at_unix: number; fencing_token: number };
    expect(body.fencing_token).toBe(lease.fencing_token);
    expect(body.expires_at_unix).toBeGreaterThan(lease.expires_at_unix + 500);
  });

  it('deletes one attachment and all attachments under the lease', async () => {
    const lease = await acquire(freshKey());
    await uploadRaw(lease, 'a', '1');
    await uploadRaw(lease, 'b', '2');
    await uploadRaw(lease, 'c', '3');
    const one = await fetch(url('/attachment', { key: lease.key, name: 'a' }), { method: 'DELETE', headers: leaseHeaders(lease) });
    expect(await one.json()).toEqual({ deleted: true });
    const missing = await fetch(url('/attachment', { key: lease.key, name: 'a' }), { method: 'DELETE', headers: leaseHeaders(lease) });
    expect(await missing.json()).toEqual({ deleted: false });
    const all = await fetch(url('/attachments', { key: lease.key }), { method: 'DELETE', headers: leaseHeaders(lease) });
    expect(await all.json()).toEqual({ deleted: 2 });
  });
});

describe('uploads', () => {
  it('stores every file part of a multipart upload, named by filename, typed by the part', async () => {
    const lease = await acquire(freshKey());
    const body = multipartBody(BOUNDARY, [
      { name: 'note', data: 'ignored field' },
      { name: 'files', filename: 'one.txt', contentType: 'text/plain', data: 'first file' },
      { name: 'files', filename: 'two.png', contentType: 'image/png', data: new Uint8Array([137, 80, 78, 71]) },
    ]);
    const response = await fetch(url('/attachments', { key: lease.key }), {
      method: 'POST',
      headers: { ...leaseHeaders(lease), 'Content-Type': MULTIPART },
      body,
    });
    expect(response.status).toBe(200);
    const result = (await response.json()) as { attachments: Record<string, unknown>[]; noop: boolean };
    expect(result.noop).toBe(false);
    expect(result.attachments.map((a) => [a.name, a.content_type, a.size])).toEqual([
      ['one.txt', 'text/plain', 10],
      ['two.png', 'image/png', 4],
    ]);
    await release(lease);
    const second = await fetch(url('/attachment', { key: lease.key, name: 'two.png' }));
    expect(new Uint8Array(await second.arrayBuffer())).toEqual(new Uint8Array([137, 80, 78, 71]));
  });

  it('answers prevent_overwrite on an existing name with noop and the existing attachment', async () => {
    const lease = await acquire(freshKey());
    const first = (await (await uploadRaw(lease, 'keep.txt', 'original')).json()) as { attachment: { id: string } };
    const again = await uploadRaw(lease, 'keep.txt', 'replacement', { prevent_overwrite: 'true' });
    expect(again.status).toBe(200);
    const body = (await again.json()) as { attachment: { id: string; size: number }; noop: boolean };
    expect(body).toMatchObject({ noop: true, attachment: { id: first.attachment.id, size: 8 } });
    const read = await fetch(url('/attachment', { key: lease.key, name: 'keep.txt' }), { headers: leaseHeaders(lease) });
    expect(await read.text()).toBe('original');
  });

  it('verifies X-Attachment-CRC32 and Content-Digest, storing nothing on mismatch', async () => {
    const lease = await acquire(freshKey());
    const content = 'checksummed bytes';
    const badCrc = await uploadRaw(lease, 'c.txt', content, {}, { 'X-Attachment-CRC32': '00000000' });
    await expectError(badCrc, 'checksum_mismatch');
    const badSha = await uploadRaw(lease, 'c.txt', content, {}, { 'Content-Digest': `sha-256=:${sha256Base64('other')}:` });
    await expectError(badSha, 'checksum_mismatch');
    const list = (await (await fetch(url('/attachments', { key: lease.key }), { headers: leaseHeaders(lease) })).json()) as {
      attachments: unknown[];
    };
    expect(list.attachments).toEqual([]);
    const good = await uploadRaw(lease, 'c.txt', content, {}, {
      'Content-Digest': `sha-512=:AAAA:, sha-256=:${sha256Base64(content)}:`,
    });
    expect(good.status).toBe(200);
    const { attachment } = (await good.json()) as { attachment: { crc32: string } };
    const goodCrc = await uploadRaw(lease, 'd.txt', content, {}, { 'X-Attachment-CRC32': attachment.crc32.toUpperCase() });
    expect(goodCrc.status).toBe(200);
  });

  it('answers 413 when the body exceeds max_bytes, keeping nothing', async () => {
    const lease = await acquire(freshKey());
    const response = await uploadRaw(lease, 'big.bin', '1234567', { max_bytes: '3' });
    await expectError(response, 'attachment_too_large');
    const list = (await (await fetch(url('/attachments', { key: lease.key }), { headers: leaseHeaders(lease) })).json()) as {
      attachments: unknown[];
    };
    expect(list.attachments).toEqual([]);
  });

  it('creates a document attachment without key or lease, readable by id', async () => {
    const response = await fetch(url('/attachments', { name: 'invoice.pdf' }), {
      method: 'POST',
      headers: { 'Content-Type': 'application/pdf' },
      body: '%PDF-1.7 tiny',
    });
    expect(response.status).toBe(200);
    const { attachment } = (await response.json()) as { attachment: { id: string; content_type: string; name: string } };
    expect(attachment).toMatchObject({ name: 'invoice.pdf', content_type: 'application/pdf' });
    expect(response.headers.get('X-Attachment-ID')).toBe(attachment.id);
    const read = await fetch(url('/attachment', { id: attachment.id }));
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('%PDF-1.7 tiny');
    expect(read.headers.get('Content-Disposition')).toMatch(/^inline; /);
  });

  it('creates document attachments from a multipart upload', async () => {
    const response = await fetch(url('/attachments'), {
      method: 'POST',
      headers: { 'Content-Type': MULTIPART },
      body: multipartBody(BOUNDARY, [
        { name: 'a', filename: 'x.txt', data: 'x' },
        { name: 'b', filename: 'y.txt', data: 'yy' },
      ]),
    });
    expect(response.status).toBe(200);
    const { attachments } = (await response.json()) as { attachments: { id: string; size: number }[] };
    expect(attachments.map((a) => a.size)).toEqual([1, 2]);
    expect(await (await fetch(url('/attachment', { id: attachments[1]!.id }))).text()).toBe('yy');
  });

  it('rejects a truncated multipart upload with 400 and keeps none of its parts', async () => {
    const lease = await acquire(freshKey());
    const body = multipartBody(BOUNDARY, [
      { name: 'a', filename: 'whole.txt', data: 'complete part' },
      { name: 'b', filename: 'cut.txt', data: 'this part never ends' },
    ]);
    const truncated = body.slice(0, body.length - 30);
    const response = await fetch(url('/attachments', { key: lease.key }), {
      method: 'POST',
      headers: { ...leaseHeaders(lease), 'Content-Type': MULTIPART },
      body: truncated,
    });
    await expectError(response, 'invalid_body');
    const list = (await (await fetch(url('/attachments', { key: lease.key }), { headers: leaseHeaders(lease) })).json()) as {
      attachments: unknown[];
    };
    expect(list.attachments).toEqual([]);
  });
});

describe('downloads', () => {
  let key: string;
  const content = '0123456789';
  beforeAll(async () => {
    const lease = await acquire((key = freshKey('ranges')));
    await uploadRaw(lease, 'digits.txt', content, { content_type: 'application/x-digits' });
    await release(lease);
  });
  const download = (headers: Record<string, string>, method = 'GET') =>
    fetch(url('/attachment', { key, name: 'digits.txt' }), { method, headers });

  it('serves single ranges with 206 and Content-Range', async () => {
    const cases: [string, string, string][] = [
      ['bytes=2-4', '234', 'bytes 2-4/10'],
      ['bytes=7-', '789', 'bytes 7-9/10'],
      ['bytes=-3', '789', 'bytes 7-9/10'],
      ['bytes=5-100', '56789', 'bytes 5-9/10'],
    ];
    for (const [range, body, contentRange] of cases) {
      const response = await download({ Range: range });
      expect(response.status, range).toBe(206);
      expect(await response.text()).toBe(body);
      expect(response.headers.get('Content-Range')).toBe(contentRange);
      expect(response.headers.get('Content-Length')).toBe(String(body.length));
    }
  });

  it('ignores malformed and multi-range headers', async () => {
    for (const range of ['bytes=4-2', 'bytes=0-1,3-4', 'items=0-1', 'bytes=abc']) {
      const response = await download({ Range: range });
      expect(response.status, range).toBe(200);
      expect(await response.text()).toBe(content);
    }
  });

  it('answers 416 with Content-Range */size for a range past the end', async () => {
    for (const range of ['bytes=10-', 'bytes=99-100', 'bytes=-0']) {
      const response = await download({ Range: range });
      await expectError(response, 'range_not_satisfiable');
      expect(response.headers.get('Content-Range')).toBe('bytes */10');
    }
  });

  it('answers 304 to a matching If-None-Match, and 200 otherwise', async () => {
    const etag = `"${sha256Hex(content)}"`;
    for (const header of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const response = await download({ 'If-None-Match': header });
      expect(response.status, header).toBe(304);
      expect(response.headers.get('ETag')).toBe(etag);
      expect(await response.text()).toBe('');
    }
    const changed = await download({ 'If-None-Match': '"something-else"' });
    expect(changed.status).toBe(200);
    expect(await changed.text()).toBe(content);
  });

  it('sends unsafe types as attachment downloads with an encoded file name', async () => {
    const lease = await acquire(freshKey());
    const name = 'résumé "final"\u00a0€.html';
    await uploadRaw(lease, name, '<script>alert(1)</script>', { content_type: 'text/html' });
    await release(lease);
    const response = await fetch(url('/attachment', { key: lease.key, name }));
    expect(response.headers.get('Content-Type')).toBe('text/html');
    expect(response.headers.get('Content-Disposition')).toBe(
      `attachment; filename="r_sum_ _final___.html"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%C2%A0%E2%82%AC.html`,
    );
    expect(response.headers.get('Content-Security-Policy')).toBeNull();
    expect(decodeURIComponent(response.headers.get('X-Attachment-Name')!)).toBe(name);
  });
});

describe('errors (API.md §3) over HTTP', () => {
  it('reaches every documented error code with its status', async () => {
    const lease = await acquire(freshKey('errors'));
    await uploadRaw(lease, 'there.txt', 'x');
    const headers = leaseHeaders(lease);
    const key = lease.key;
    const cases: [string, () => Promise<Response>][] = [
      ['missing_key', () => fetch(url('/attachments'))],
      ['invalid_key', () => fetch(url('/attachments', { key: 'UPPER/case' }))],
      ['invalid_namespace', () => fetch(url('/attachments', { key, namespace: 'Bad NS' }))],
      ['missing_name', () => fetch(url('/attachment', { key }))],
      ['invalid_name', () => fetch(url('/attachment', { key, name: '..' }))],
      ['missing_lease', () => fetch(url('/attachments', { key, name: 'x' }), { method: 'POST', body: 'x' })],
      ['missing_txn', () => fetch(url('/attachments', { key, name: 'x' }), { method: 'POST', body: 'x', headers: { 'X-Lease-ID': lease.lease_id } })],
      [
        'missing_fencing_token',
        () => fetch(url('/attachments', { key, name: 'x' }), { method: 'POST', body: 'x', headers: { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id } }),
      ],
      ['invalid_fencing_token', () => fetch(url('/attachments', { key, name: 'x' }), { method: 'POST', body: 'x', headers: { ...headers, 'X-Fencing-Token': '-1' } })],
      ['invalid_max_bytes', () => fetch(url('/attachments', { key, name: 'x', max_bytes: '1.5' }), { method: 'POST', body: 'x', headers })],
      ['checksum_mismatch', () => uploadRaw(lease, 'x', 'x', {}, { 'X-Attachment-CRC32': 'ffffffff' })],
      ['invalid_body', () => fetch(url('/acquire'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"key":' })],
      ['lease_required', () => uploadRaw({ ...lease, lease_id: '0190a0a0-0000-7000-8000-000000000000' }, 'x', 'x')],
      ['fencing_mismatch', () => uploadRaw({ ...lease, fencing_token: lease.fencing_token + 7 }, 'x', 'x')],
      ['txn_mismatch', () => uploadRaw({ ...lease, txn_id: 'another-txn' }, 'x', 'x')],
      ['attachment_not_found', () => fetch(url('/attachment', { id: '0190a0a0-0000-7000-8000-000000000000' }))],
      ['not_found', () => fetch(`${server.base}/nope`)],
      ['method_not_allowed', () => fetch(url('/acquire'))],
      ['waiting', () => postJson('/acquire', { key, owner: 'other', ttl_seconds: 5 })],
      ['attachment_too_large', () => uploadRaw(lease, 'x', '1234567', { max_bytes: '3' })],
      ['range_not_satisfiable', () => fetch(url('/attachment', { key, name: 'there.txt' }), { headers: { ...headers, Range: 'bytes=5-' } })],
    ];
    for (const [code, request] of cases) {
      const body = await expectError(await request(), code);
      if (code === 'waiting') expect(body.retry_after_seconds).toBeGreaterThanOrEqual(1);
    }
  });

  it('sends Retry-After with waiting and Allow with method_not_allowed', async () => {
    const lease = await acquire(freshKey());
    const waiting = await postJson('/acquire', { key: lease.key, owner: 'other', ttl_seconds: 5 });
    expect(Number(waiting.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
    const wrongMethod = await fetch(url('/attachment'), { method: 'PUT' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('Allow')).toBe('GET, HEAD, DELETE');
  });

  it('answers lease_expired for a lease whose time ran out', async () => {
    const lease = await acquire(freshKey(), { ttl_seconds: 1 });
    server.advance(5);
    await expectError(await uploadRaw(lease, 'late.txt', 'x'), 'lease_expired');
    await expectError(await release(lease), 'lease_expired');
  });

  it('never answers bad input with a 5xx', async () => {
    const lease = await acquire(freshKey());
    const headers = leaseHeaders(lease);
    const key = lease.key;
    const post = (query: Record<string, string>, init: RequestInit = {}) =>
      fetch(url('/attachments', query), { method: 'POST', body: 'x', ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
    const requests: [string, () => Promise<Response>][] = [
      ['name with /', () => post({ key, name: 'a/b' })],
      ['name ..', () => post({ key, name: '..' })],
      ['name with NUL', () => post({ key, name: 'a\u0000b' })],
      ['name with CR LF', () => post({ key, name: 'a\r\nb' })],
      ['name too long', () => post({ key, name: 'n'.repeat(256) })],
      ['key with ..', () => post({ key: 'a/../b', name: 'x' })],
      ['key with empty segment', () => post({ key: 'a//b', name: 'x' })],
      ['key too long', () => post({ key: 'k'.repeat(129), name: 'x' })],
      ['namespace too long', () => post({ key, namespace: 'n'.repeat(129), name: 'x' })],
      ['content_type with CR LF', () => post({ key, name: 'x', content_type: 'text/plain\r\nX-Evil: 1' })],
      ['content_type not a type', () => post({ key, name: 'x', content_type: 'nonsense' })],
      ['fencing token not a number', () => post({ key, name: 'x' }, { headers: { 'X-Fencing-Token': 'abc' } })],
      ['fencing token huge', () => post({ key, name: 'x' }, { headers: { 'X-Fencing-Token': '99999999999999999999999' } })],
      ['crc32 malformed', () => post({ key, name: 'x' }, { headers: { 'X-Attachment-CRC32': 'xyz' } })],
      ['content-digest malformed', () => post({ key, name: 'x' }, { headers: { 'Content-Digest': 'sha-256=:not base64!:' } })],
      ['max_bytes negative', () => post({ key, name: 'x', max_bytes: '-1' })],
      ['multipart without boundary', () => post({ key }, { headers: { 'Content-Type': 'multipart/form-data' } })],
      ['multipart garbage', () => post({ key }, { headers: { 'Content-Type': MULTIPART }, body: 'garbage' })],
      ['multipart without file parts', () => post({ key }, { headers: { 'Content-Type': MULTIPART }, body: multipartBody(BOUNDARY, [{ name: 'f', data: 'v' }]) })],
      ['multipart bad part name', () => post({ key }, { headers: { 'Content-Type': MULTIPART }, body: multipartBody(BOUNDARY, [{ name: 'f', filename: '..', data: 'v' }]) })],
      ['malformed id', () => fetch(url('/attachment', { id: 'not-an-id' }))],
      ['malformed id with key', () => fetch(url('/attachment', { key, id: "'; drop table" }))],
      ['JSON array body', () => postJson('/acquire', [1, 2])],
      ['JSON null body', () => postJson('/acquire', null)],
      ['JSON wrong content type', () => fetch(url('/acquire'), { method: 'POST', body: '{"key":"a","owner":"o","ttl_seconds":1}' })],
      ['JSON too large', () => postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1, pad: 'p'.repeat(70_000) })],
      ['JSON invalid UTF-8', () => fetch(url('/acquire'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: new Uint8Array([0x7b, 0xff, 0x7d]) })],
      ['acquire without owner', () => postJson('/acquire', { key: 'a', ttl_seconds: 1 })],
      ['acquire ttl 0', () => postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 0 })],
      ['acquire ttl string', () => postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: '5' })],
      ['acquire ttl huge', () => postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1e300 })],
      ['acquire block -2', () => postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1, block_seconds: -2 })],
      ['acquire block fractional', () => postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1, block_seconds: 0.5 })],
      ['acquire key number', () => postJson('/acquire', { key: 5, owner: 'o', ttl_seconds: 1 })],
      ['acquire txn_id with slash', () => postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1, txn_id: '../x' })],
      ['keepalive without lease id', () => postJson('/keepalive', { key, txn_id: 't', ttl_seconds: 1 }, { 'X-Fencing-Token': '1' })],
      ['release rollback string', () => postJson('/release', { key, lease_id: 'l', txn_id: 't', rollback: 'yes' }, { 'X-Fencing-Token': '1' })],
      ['release unknown lease', () => postJson('/release', { key, lease_id: 'l', txn_id: 't' }, { 'X-Fencing-Token': '1' })],
      ['download by name, unknown', () => fetch(url('/attachment', { key, name: 'missing' }))],
    ];
    for (const [label, request] of requests) {
      const response = await request();
      expect(response.status, label).toBeGreaterThanOrEqual(400);
      expect(response.status, label).toBeLessThan(500);
      const body = (await response.json()) as { error: string; detail: string };
      expect(body.detail, label).not.toMatch(/\n\s+at /);
    }
  });
});

describe('routing, auth and docs', () => {
  it('serves healthz and tolerates a trailing slash', async () => {
    expect(await (await fetch(`${server.base}/healthz`)).json()).toEqual({ ok: true });
    expect((await fetch(`${server.base}/healthz/`)).status).toBe(200);
  });

  it('serves an OpenAPI 3.1 document', async () => {
    const response = await fetch(`${server.base}/openapi.json`);
    const document = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toContain('/attachments');
  });

  it('requires the bearer token everywhere but healthz, and says so with WWW-Authenticate', async () => {
    const guarded = await startServer({ token: 's3cret-token' });
    try {
      const missing = await fetch(`${guarded.base}/attachments?key=a`);
      await expectError(missing, 'unauthorized');
      expect(missing.headers.get('WWW-Authenticate')).toBe('Bearer');
      await expectError(await fetch(`${guarded.base}/attachments?key=a`, { headers: { Authorization: 'Bearer s3cret-tokeN' } }), 'unauthorized');
      await expectError(await fetch(`${guarded.base}/nowhere`), 'unauthorized');
      const ok = await fetch(`${guarded.base}/attachments?key=a`, { headers: { Authorization: 'Bearer s3cret-token' } });
      expect(ok.status).toBe(200);
      expect((await fetch(`${guarded.base}/healthz`)).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });

  it('asks the authorize hook with the action and scope; false is 401, a Response is sent as is', async () => {
    const seen: string[] = [];
    const hooked = await startServer({
      basePath: '/api/files',
      authorize: ({ action, namespace, key }) => {
        seen.push(`${action}:${namespace}:${key}`);
        if (key === 'forbidden') return new Response('go away', { status: 403 });
        return key !== 'denied';
      },
    });
    try {
      expect((await fetch(`${hooked.base}/attachments?key=allowed`)).status).toBe(200);
      await expectError(await fetch(`${hooked.base}/attachments?key=denied`), 'unauthorized');
      const custom = await fetch(`${hooked.base}/attachments?key=forbidden`);
      expect(custom.status).toBe(403);
      expect(await custom.text()).toBe('go away');
      expect(seen).toEqual(['list:default:allowed', 'list:default:denied', 'list:default:forbidden']);
      expect((await fetch(`${hooked.base}/healthz`)).status).toBe(200);
    } finally {
      await hooked.close();
    }
  });
});
