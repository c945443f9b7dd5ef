// Core's in-app upload entry behind a bare fetch server: the shared
// in-app upload specification, and what `storeFormUpload` promises on its own.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
// The suite by relative path: core cannot depend on @attache/testing, which depends on core.
import { describeInAppUploads } from '../../../testing/src/index.js';
import { errorResponse, leaseFromRequest, storeFormUpload } from '../../src/http/index.js';

describeInAppUploads('core storeFormUpload + errorResponse (bare fetch server)', async ({ store, field, maxBytes }) => {
  const upload = async (request: Request): Promise<Response> => {
    try {
      const lease = leaseFromRequest(request.headers, request.url);
      const { attachments } = await storeFormUpload(request, store, { field, maxFiles: 1, maxBytes, ...(lease ? { lease } : {}) });
      return Response.json({ id: attachments[0]!.id }, { status: 201 });
    } catch (error) {
      return errorResponse(error, { quiet: request.signal.aborted });
    }
  };
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: upload, hostname: '127.0.0.1', port: 0 }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return {
    uploadUrl: `http://127.0.0.1:${port}/upload`,
    close: async () => {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closing;
    },
  };
});
