// Access control over HTTP: the bearer token and the authorize hook.
import type { AuthorizeContext } from '@attache/core';
import { describe, expect, it } from 'vitest';
import { expectError, leaseHeaders, type LeaseJson } from './harness.js';
import type { ContractContext } from './context.js';

export function authScenarios(context: ContractContext): void {
  // Each scenario mounts a store of its own with a token or a hook.
  describe.skipIf(!context.supports.serverOptions)('bearer token', () => {
    it('answers 401 unauthorized with WWW-Authenticate: Bearer without the right token, everywhere but healthz', async () => {
      await context.withServer({ token: 's3cret-token' }, async ({ http }) => {
        const missing = await http.get('/attachments', { key: 'a' });
        await expectError(missing, 'unauthorized');
        expect(missing.headers.get('WWW-Authenticate')).toBe('Bearer');
        const wrong = { headers: { Authorization: 'Bearer s3cret-tokeN' } };
        await expectError(await http.get('/attachments', { key: 'a' }, wrong), 'unauthorized');
        await expectError(await http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 5 }), 'unauthorized');
        // Unknown paths do not reveal themselves before authentication.
        await expectError(await fetch(`${http.baseUrl}/nowhere`), 'unauthorized');
        expect((await http.get('/healthz')).status).toBe(200);
      });
    });

    it('serves every route to a client that sends the token', async () => {
      await context.withServer({ token: 's3cret-token' }, async ({ http }) => {
        const auth = { Authorization: 'Bearer s3cret-token' };
        expect((await http.get('/attachments', { key: 'a' }, { headers: auth })).status).toBe(200);
        const acquired = await http.postJson('/acquire', { key: 'a', owner: 'o', ttl_seconds: 5 }, auth);
        expect(acquired.status).toBe(200);
        const lease = (await acquired.json()) as LeaseJson;
        const upload = await http.uploadRaw(lease, 'x.txt', 'x', {}, auth);
        expect(upload.status).toBe(200);
      });
    });
  });

  describe.skipIf(!context.supports.serverOptions)('authorize hook', () => {
    it('is asked with the action, namespace and key of every route', async () => {
      const seen: string[] = [];
      const authorize = ({ action, namespace, key, request }: AuthorizeContext) => {
        expect(request).toBeInstanceOf(Request);
        seen.push(`${action}:${namespace ?? ''}:${key ?? ''}`);
        return true;
      };
      await context.withServer({ authorize }, async ({ http }) => {
        const lease = await http.acquire('hooked/key', { namespace: 'ns-1' });
        await http.keepalive(lease, 30);
        const uploaded = await http.uploadRaw(lease, 'a.txt', 'a');
        expect(uploaded.status).toBe(200);
        await http.get('/attachments', { key: lease.key, namespace: 'ns-1' }, { headers: leaseHeaders(lease) });
        await http.get('/attachment', { key: lease.key, namespace: 'ns-1', name: 'a.txt' }, { headers: leaseHeaders(lease) });
        await http.get('/attachment', { key: lease.key, namespace: 'ns-1', name: 'a.txt' }, { method: 'DELETE', headers: leaseHeaders(lease) });
        await http.release(lease);
        expect(seen).toEqual([
          'acquire:ns-1:hooked/key',
          'keepalive:ns-1:hooked/key',
          'upload:ns-1:hooked/key',
          'list:ns-1:hooked/key',
          'download:ns-1:hooked/key',
          'delete:ns-1:hooked/key',
          'release:ns-1:hooked/key',
        ]);
      });
    });

    it('is told the namespace a document upload goes to (no key), so it can guard tenants', async () => {
      const seen: string[] = [];
      const authorize = ({ action, namespace, key }: AuthorizeContext) => {
        seen.push(`${action}:${namespace ?? ''}:${key ?? ''}`);
        return namespace !== 'tenant-b';
      };
      await context.withServer({ authorize }, async ({ http }) => {
        const denied = await fetch(http.url('/attachments', { namespace: 'tenant-b', name: 'a.txt' }), { method: 'POST', body: 'a' });
        await expectError(denied, 'unauthorized');
        const allowed = await fetch(http.url('/attachments', { name: 'a.txt' }), { method: 'POST', body: 'a' });
        expect(allowed.status).toBe(200);
        expect(seen).toEqual(['upload:tenant-b:', 'upload::']);
      });
    });

    it('answers 401 when the hook says false, and sends a Response from the hook as it is', async () => {
      const authorize = ({ key }: AuthorizeContext) => {
        if (key === 'forbidden') return new Response('go away', { status: 403, headers: { 'X-Reason': 'policy' } });
        return key !== 'denied';
      };
      await context.withServer({ authorize }, async ({ http }) => {
        expect((await http.get('/attachments', { key: 'allowed' })).status).toBe(200);
        await expectError(await http.get('/attachments', { key: 'denied' }), 'unauthorized');
        const custom = await http.get('/attachments', { key: 'forbidden' });
        expect(custom.status).toBe(403);
        expect(custom.headers.get('X-Reason')).toBe('policy');
        expect(await custom.text()).toBe('go away');
        expect((await http.get('/healthz')).status).toBe(200);
      });
    });

    it('is asked before the body is read: a denied upload stores nothing', async () => {
      const authorize = ({ action }: AuthorizeContext) => action !== 'upload';
      await context.withServer({ authorize }, async ({ http, blobs }) => {
        const lease = await http.acquire('guarded/key');
        await expectError(await http.uploadRaw(lease, 'x.bin', 'payload'), 'unauthorized');
        expect(await blobs.paths()).toEqual([]);
      });
    });
  });
}
