// Routing under the mount: health, OpenAPI, trailing slashes, unknown paths,
// and the shape of every JSON answer.
import { describe, expect, it } from 'vitest';
import { expectError, freshKey, leaseHeaders } from './harness.js';
import type { ContractContext } from './context.js';

export function routingScenarios(context: ContractContext): void {
  describe('routing and docs', () => {
    it('serves healthz and tolerates a trailing slash', async () => {
      const { baseUrl } = context.http;
      expect(await (await fetch(`${baseUrl}/healthz`)).json()).toEqual({ ok: true });
      expect((await fetch(`${baseUrl}/healthz/`)).status).toBe(200);
    });

    it('answers HEAD /healthz and HEAD /openapi.json like GET, without a body (load balancers probe with HEAD)', async () => {
      const { baseUrl } = context.http;
      for (const path of ['/healthz', '/openapi.json']) {
        const get = await fetch(`${baseUrl}${path}`);
        const getBody = await get.text();
        const head = await fetch(`${baseUrl}${path}`, { method: 'HEAD' });
        expect(head.status, path).toBe(200);
        expect(head.headers.get('Content-Type'), path).toBe(get.headers.get('Content-Type'));
        expect(await head.text(), path).toBe('');
        // When the host sends a length for HEAD, it is the length of the GET body.
        const length = head.headers.get('Content-Length');
        if (length !== null) expect(Number(length), path).toBe(new TextEncoder().encode(getBody).byteLength);
      }
    });

    it('serves an OpenAPI 3.1 document of the contract', async () => {
      const response = await fetch(`${context.http.baseUrl}/openapi.json`);
      expect(response.headers.get('Content-Type')).toMatch(/^application\/json/);
      const document = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
      expect(document.openapi).toBe('3.1.0');
      expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/acquire', '/attachments', '/attachment']));
    });

    it('answers unknown paths under the mount with 404 not_found JSON', async () => {
      const { baseUrl } = context.http;
      await expectError(await fetch(`${baseUrl}/nope`), 'not_found');
      await expectError(await fetch(`${baseUrl}/attachments/extra/segments`), 'not_found');
      await expectError(await fetch(`${baseUrl}/nope`, { method: 'POST', body: 'x' }), 'not_found');
    });

    it('ends every JSON body, answers and errors alike, with a newline (curl output does not run together)', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const answers: [string, Response][] = [
        ['healthz', await http.get('/healthz')],
        ['openapi', await http.get('/openapi.json')],
        ['upload', await http.uploadRaw(lease, 'n.txt', 'x')],
        ['list', await http.get('/attachments', { key: lease.key }, { headers: leaseHeaders(lease) })],
        ['delete', await fetch(http.url('/attachment', { key: lease.key, name: 'n.txt' }), { method: 'DELETE', headers: leaseHeaders(lease) })],
        ['keepalive', await http.keepalive(lease, 60)],
        ['release', await http.release(lease)],
        ['404', await fetch(`${http.baseUrl}/nope`)],
        ['405', await fetch(http.url('/acquire'))],
        ['400', await http.get('/attachments')],
        ['409 waiting', await http.postJson('/acquire', { key: (await http.acquire(freshKey())).key, owner: 'o', ttl_seconds: 5 })],
      ];
      for (const [label, response] of answers) {
        expect(response.headers.get('Content-Type'), label).toBe('application/json; charset=utf-8');
        const text = await response.text();
        expect(text.endsWith('}\n'), `${label}: ${JSON.stringify(text.slice(-20))}`).toBe(true);
        expect(() => JSON.parse(text), label).not.toThrow();
      }
    });
  });
}
