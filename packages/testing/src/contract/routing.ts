// Routing under the mount: health, OpenAPI, trailing slashes, unknown paths.
import { describe, expect, it } from 'vitest';
import { expectError } from './harness.js';
import type { ContractContext } from './suite.js';

export function routingScenarios(context: ContractContext): void {
  describe('routing and docs', () => {
    it('serves healthz and tolerates a trailing slash', async () => {
      const { baseUrl } = context.http;
      expect(await (await fetch(`${baseUrl}/healthz`)).json()).toEqual({ ok: true });
      expect((await fetch(`${baseUrl}/healthz/`)).status).toBe(200);
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
  });
}
