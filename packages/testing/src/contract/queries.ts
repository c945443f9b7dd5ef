// Query strings are strict: a parameter a route does not know, or a known one
// given twice, is refused with 400 invalid_query before anything happens, so
// a typo (`kye=orders/1`) can never silently change what a request does.
import { describe, expect, it } from 'vitest';
import { expectError, freshKey, leaseHeaders, type LeaseJson } from './harness.js';
import type { ContractContext } from './context.js';

export function queryScenarios(context: ContractContext): void {
  describe('query parameters', () => {
    /** Refused with invalid_query, the detail naming the parameter (HEAD: the status only, it has no body). */
    async function expectInvalidQuery(response: Response, parameter: string, label: string): Promise<void> {
      if (label.startsWith('HEAD')) {
        expect(response.status, label).toBe(400);
        return;
      }
      const body = await expectError(response, 'invalid_query');
      expect(body.detail, label).toContain(`"${parameter}"`);
    }

    const send = (lease: LeaseJson | undefined, method: string, path: string, query: string, body?: string, json = false) =>
      fetch(`${context.http.baseUrl}${path}?${query}`, {
        method,
        headers: { ...(lease ? leaseHeaders(lease) : {}), ...(json ? { 'Content-Type': 'application/json' } : {}) },
        ...(body === undefined ? {} : { body }),
      });

    it('refuses a document upload with a misspelt key (kye=) with 400 invalid_query and stores nothing', async () => {
      const { http, server } = context;
      // Background promotions of earlier calls must not move blobs between the two snapshots.
      await server.settled();
      const before = await server.blobs.paths('state/');
      const response = await fetch(http.url('/attachments', { kye: 'orders/1', name: 'a.txt' }), { method: 'POST', body: 'bytes' });
      await expectInvalidQuery(response, 'kye', 'POST /attachments');
      await server.settled();
      expect(await server.blobs.paths('state/')).toEqual(before);
      expect(await http.committed('orders/1')).toEqual([]);
    });

    it('refuses an unknown parameter on every route with 400 invalid_query naming it, changing nothing', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      await http.uploadRaw(lease, 'kept.txt', 'kept');
      const key = encodeURIComponent(lease.key);
      const leaseBody = JSON.stringify({ key: lease.key, lease_id: lease.lease_id, txn_id: lease.txn_id, ttl_seconds: 60 });
      // Background promotions of earlier calls must not move blobs between the two snapshots.
      await server.settled();
      const blobsBefore = await server.blobs.paths('state/');
      const cases: [string, string, () => Promise<Response>][] = [
        ['POST /attachments', 'nmae', () => send(lease, 'POST', '/attachments', `key=${key}&name=new.txt&nmae=x`, 'new')],
        ['GET /attachments', 'pubic', () => send(lease, 'GET', '/attachments', `key=${key}&pubic=true`)],
        ['DELETE /attachments', 'al', () => send(lease, 'DELETE', '/attachments', `key=${key}&al=1`)],
        ['GET /attachment', 'verison', () => send(lease, 'GET', '/attachment', `key=${key}&name=kept.txt&verison=2`)],
        ['HEAD /attachment', 'verison', () => send(lease, 'HEAD', '/attachment', `key=${key}&name=kept.txt&verison=2`)],
        ['DELETE /attachment', 'force', () => send(lease, 'DELETE', '/attachment', `key=${key}&name=kept.txt&force=1`)],
        ['POST /acquire', 'wait', () => send(undefined, 'POST', '/acquire', 'wait=1', JSON.stringify({ key: freshKey(), owner: 'o', ttl_seconds: 5 }), true)],
        ['POST /keepalive', 'ttl', () => send(lease, 'POST', '/keepalive', 'ttl=1', leaseBody, true)],
        ['POST /release', 'rollback', () => send(lease, 'POST', '/release', 'rollback=true', leaseBody, true)],
        ['GET /healthz', 'verbose', () => send(undefined, 'GET', '/healthz', 'verbose=1')],
        ['GET /openapi.json', 'format', () => send(undefined, 'GET', '/openapi.json', 'format=yaml')],
      ];
      for (const [label, parameter, request] of cases) await expectInvalidQuery(await request(), parameter, label);
      // Nothing was staged, deleted, released or rolled back.
      expect(await http.namesUnderLease(lease)).toEqual(['kept.txt']);
      await server.settled();
      expect(await server.blobs.paths('state/')).toEqual(blobsBefore);
      expect((await http.release(lease)).status).toBe(200);
      expect((await http.committed(lease.key)).map((a) => a.name)).toEqual(['kept.txt']);
    });

    it('refuses a parameter given twice (name=a&name=b) with 400 invalid_query: which one was meant is ambiguous', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const key = encodeURIComponent(lease.key);
      await expectInvalidQuery(await send(lease, 'POST', '/attachments', `key=${key}&name=a.txt&name=b.txt`, 'x'), 'name', 'POST twice');
      await expectInvalidQuery(await send(lease, 'GET', '/attachments', `key=${key}&key=${key}`), 'key', 'GET twice');
      expect(await http.namesUnderLease(lease)).toEqual([]);
    });

    it('accepts every documented parameter of a route, empty ones included', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const key = encodeURIComponent(lease.key);
      const uploaded = await send(lease, 'POST', '/attachments', `namespace=default&key=${key}&name=all.txt&content_type=text/plain&max_bytes=100&prevent_overwrite=false`, 'x');
      expect(uploaded.status).toBe(200);
      expect((await send(lease, 'GET', '/attachments', `namespace=&key=${key}&public=0`)).status).toBe(200);
      expect((await send(lease, 'GET', '/attachment', `namespace=default&key=${key}&name=all.txt&id=&public=false`)).status).toBe(200);
    });
  });
}
