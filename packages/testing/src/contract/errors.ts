// API.md §3 over HTTP: every error code a client can cause, with its status
// and JSON body; bad input is always a 4xx, never a 5xx or a stack trace.
//
// Not reachable over HTTP, so covered by the engine suite instead:
// `size_mismatch` (HTTP/1.1 framing turns a body shorter than its
// Content-Length into a broken connection); `unauthorized` is in auth.ts.
import { request as httpRequest } from 'node:http';
import { newId, type ErrorCode } from '@attache/core';
import { describe, expect, it } from 'vitest';
import { MULTIPART, multipartBody } from './bodies.js';
import { expectError, freshKey, leaseHeaders } from './harness.js';
import type { ContractContext } from './context.js';

const UNKNOWN_ID = '0190a0a0-0000-7000-8000-000000000000';

export function errorScenarios(context: ContractContext): void {
  describe('errors (API.md §3)', () => {
    it('reaches every documented error code with its status and a JSON body', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey('errors'));
      await http.uploadRaw(lease, 'there.txt', 'x');
      const headers = leaseHeaders(lease);
      const key = lease.key;
      const post = (query: Record<string, string>, requestHeaders: Record<string, string> = {}) =>
        fetch(http.url('/attachments', query), { method: 'POST', body: 'x', headers: requestHeaders });
      const cases: [ErrorCode, () => Promise<Response>][] = [
        ['missing_key', () => http.get('/attachments')],
        ['invalid_key', () => http.get('/attachments', { key: 'UPPER/case' })],
        ['invalid_namespace', () => http.get('/attachments', { key, namespace: 'Bad NS' })],
        ['missing_name', () => http.get('/attachment', { key })],
        ['invalid_name', () => http.get('/attachment', { key, name: '..' })],
        ['missing_lease', () => post({ key, name: 'x' })],
        ['missing_txn', () => post({ key, name: 'x' }, { 'X-Lease-ID': lease.lease_id })],
        ['missing_fencing_token', () => post({ key, name: 'x' }, { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id })],
        ['invalid_fencing_token', () => post({ key, name: 'x' }, { ...headers, 'X-Fencing-Token': '-1' })],
        ['invalid_max_bytes', () => post({ key, name: 'x', max_bytes: '1.5' }, headers)],
        ['checksum_mismatch', () => http.uploadRaw(lease, 'x', 'x', {}, { 'X-Attachment-CRC32': 'ffffffff' })],
        ['invalid_body', () => fetch(http.url('/acquire'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"key":' })],
        ['lease_required', () => http.uploadRaw({ ...lease, lease_id: UNKNOWN_ID }, 'x', 'x')],
        ['fencing_mismatch', () => http.uploadRaw({ ...lease, fencing_token: lease.fencing_token + 7 }, 'x', 'x')],
        ['txn_mismatch', () => http.uploadRaw({ ...lease, txn_id: 'another-txn' }, 'x', 'x')],
        ['attachment_not_found', () => http.get('/attachment', { id: UNKNOWN_ID })],
        ['not_found', () => fetch(`${http.baseUrl}/nope`)],
        ['method_not_allowed', () => http.get('/acquire')],
        ['waiting', () => http.postJson('/acquire', { key, owner: 'other', ttl_seconds: 5 })],
        ['attachment_too_large', () => http.uploadRaw(lease, 'x', '1234567', { max_bytes: '3' })],
        // A document upload's chosen id: malformed, or one an attachment has.
        ['invalid_ref', () => post({ name: 'doc.txt', id: 'not-a-uuidv7' })],
        ['attachment_exists', async () => {
          const id = newId();
          await post({ name: 'doc.txt', id });
          return post({ name: 'doc.txt', id });
        }],
        ['range_not_satisfiable', () => http.get('/attachment', { key, name: 'there.txt' }, { headers: { ...headers, Range: 'bytes=5-' } })],
      ];
      for (const [code, request] of cases) {
        const body = await expectError(await request(), code);
        if (code === 'waiting') expect(body.retry_after_seconds).toBeGreaterThanOrEqual(1);
      }

      // lease_expired needs the store's clock moved; the leases scenarios cover it too.
      if (context.supports.clock) {
        const expired = await http.acquire(freshKey('errors'), { ttl_seconds: 1 });
        server.advance(5);
        await expectError(await http.uploadRaw(expired, 'late.txt', 'x'), 'lease_expired');
      }
    });

    it.skipIf(!context.supports.serverOptions)('answers 503 unavailable with Retry-After while the metadata store is down', async () => {
      await context.withServer({}, async (server) => {
        server.outage = true;
        const response = await server.http.get('/attachments', { key: 'some/key' });
        const body = await expectError(response, 'unavailable');
        expect(response.headers.get('Retry-After')).toBe('2');
        expect(body.retry_after_seconds).toBe(2);
        server.outage = false;
        expect((await server.http.get('/attachments', { key: 'some/key' })).status).toBe(200);
      });
    });

    it('sends Allow with 405 method_not_allowed', async () => {
      const response = await fetch(context.http.url('/attachment'), { method: 'PUT' });
      await expectError(response, 'method_not_allowed');
      expect(response.headers.get('Allow')).toBe('GET, HEAD, DELETE');
    });

    it.skipIf(!context.supports.forbiddenMethodsReachMount)('answers methods fetch cannot carry (TRACE, TRACK) with a 4xx, and keeps serving', async () => {
      // fetch refuses to send them, so they go out through node:http; a
      // conversion that builds a fetch Request from them throws.
      for (const method of ['TRACE', 'TRACK']) {
        const status = await rawStatus(context.http.url('/healthz'), method);
        expect({ method, status: status >= 400 && status < 500 }).toEqual({ method, status: true });
      }
      expect((await context.http.get('/healthz')).status).toBe(200);
    });

    it('never answers bad input with a 5xx or a stack trace', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const headers = leaseHeaders(lease);
      const key = lease.key;
      const post = (query: Record<string, string>, init: { headers?: Record<string, string>; body?: BodyInit } = {}) =>
        fetch(http.url('/attachments', query), { method: 'POST', body: init.body ?? 'x', headers: { ...headers, ...init.headers } });
      const requests: [string, () => Promise<Response>][] = [
        ['name with /', () => post({ key, name: 'a/b' })],
        ['name ..', () => post({ key, name: '..' })],
        ['name with NUL', () => post({ key, name: 'a\u0000b' })],
        ['name with CR LF', () => post({ key, name: 'a\r\nb' })],
        ['name too long', () => post({ key, name: 'n'.repeat(256) })],
        ['key with ..', () => post({ key: 'a/../b', name: 'x' })],
        ['key with empty segment', () => post({ key: 'a//b', name: 'x' })],
        ['key too long', () => post({ key: 'k'.repeat(129), name: 'x' })],
        ['key .staging', () => post({ key: 'a/.staging/b', name: 'x' })],
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
        ['multipart without file parts', () => post({ key }, { headers: { 'Content-Type': MULTIPART }, body: multipartBody([{ name: 'f', data: 'v' }]) })],
        ['multipart bad part name', () => post({ key }, { headers: { 'Content-Type': MULTIPART }, body: multipartBody([{ name: 'f', filename: '..', data: 'v' }]) })],
        ['malformed id', () => http.get('/attachment', { id: 'not-an-id' })],
        ['malformed id with key', () => http.get('/attachment', { key, id: "'; drop table" })],
        ['JSON array body', () => http.postJson('/acquire', [1, 2])],
        ['JSON null body', () => http.postJson('/acquire', null)],
        ['JSON wrong content type', () => fetch(http.url('/acquire'), { method: 'POST', body: '{"key":"a","owner":"o","ttl_seconds":1}' })],
        ['JSON too large', () => http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1, pad: 'p'.repeat(70_000) })],
        ['JSON invalid UTF-8', () => fetch(http.url('/acquire'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: new Uint8Array([0x7b, 0xff, 0x7d]) })],
        ['JSON empty body', () => fetch(http.url('/acquire'), { method: 'POST', headers: { 'Content-Type': 'application/json' } })],
        ['acquire without owner', () => http.postJson('/acquire', { key: 'a', ttl_seconds: 1 })],
        ['acquire ttl 0', () => http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 0 })],
        ['acquire ttl string', () => http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: '5' })],
        ['acquire ttl huge', () => http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1e300 })],
        ['acquire block -2', () => http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1, block_seconds: -2 })],
        ['acquire block fractional', () => http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1, block_seconds: 0.5 })],
        ['acquire key number', () => http.postJson('/acquire', { key: 5, owner: 'o', ttl_seconds: 1 })],
        ['acquire txn_id with slash', () => http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 1, txn_id: '../x' })],
        ['keepalive without lease id', () => http.postJson('/keepalive', { key, txn_id: 't', ttl_seconds: 1 }, { 'X-Fencing-Token': '1' })],
        ['release rollback string', () => http.postJson('/release', { key, lease_id: 'l', txn_id: 't', rollback: 'yes' }, { 'X-Fencing-Token': '1' })],
        ['release unknown lease', () => http.postJson('/release', { key, lease_id: 'l', txn_id: 't' }, { 'X-Fencing-Token': '1' })],
        ['download by name, unknown', () => http.get('/attachment', { key, name: 'missing' })],
        ['percent-encoded garbage in the query', () => fetch(`${http.baseUrl}/attachments?key=%E0%A4%A`)],
      ];
      for (const [label, request] of requests) {
        const response = await request();
        expect(response.status, label).toBeGreaterThanOrEqual(400);
        expect(response.status, label).toBeLessThan(500);
        const body = (await response.json()) as { error: string; detail: string };
        expect(body.error, label).toEqual(expect.any(String));
        expect(body.detail, label).not.toMatch(/\n\s+at /);
      }
    });
  });
}

/** The status of one request sent with node:http (any method), its body discarded. */
function rawStatus(url: string, method: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', reject);
    request.end();
  });
}
