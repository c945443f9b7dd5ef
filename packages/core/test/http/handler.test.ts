// The HTTP contract (packages/testing/src/contract), run against core's bare
// handler served by @hono/node-server. The suite is imported by relative
// path: core cannot depend on @attache/testing, which depends on core.
import { describe, expect, it } from 'vitest';
import { describeHttpContract } from '../../../testing/src/index.js';
import { memoryBlobs } from '../../src/memory/blobs.js';
import { memoryMetadata } from '../../src/memory/metadata.js';
import { createAttachmentStore } from '../../src/store.js';
import { mountHandler } from './server.js';

describeHttpContract('core handler (bare, @hono/node-server)', (options) => mountHandler(options));

describe('createHandler basePath', () => {
  it('serves the routes under any base path and nothing outside it', async () => {
    const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs(), sweepIntervalSeconds: 0 });
    const mounted = await mountHandler({ store, basePath: '/api/files/' });
    try {
      expect(mounted.baseUrl).toMatch(/\/api\/files\/$/);
      const base = mounted.baseUrl.replace(/\/$/, '');
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true });
      const outside = await fetch(base.replace('/api/files', '/v1') + '/healthz');
      expect(outside.status).toBe(404);
      expect(await outside.json()).toMatchObject({ error: 'not_found' });
    } finally {
      await mounted.close();
      await store.close();
    }
  });
});
