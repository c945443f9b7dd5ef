// The shared in-app upload specification in a Hono app: a route of the app's
// own over core's entry (`storeFormUpload`) and error mapper (`errorResponse`),
// as apps/hono-example does it.
import { errorResponse, leaseFromRequest, storeFormUpload } from '@attache/core';
import { describeInAppUploads } from '@attache/testing';
import { Hono } from 'hono';
import { serveHono } from './serve-hono.js';

describeInAppUploads('hono (a route over storeFormUpload)', async ({ store, field, maxBytes }) => {
  const app = new Hono();
  app.post('/upload', async (c) => {
    try {
      const lease = leaseFromRequest(c.req.raw.headers, c.req.url);
      const { attachments } = await storeFormUpload(c.req.raw, store, { field, maxFiles: 1, maxBytes, ...(lease ? { lease } : {}) });
      return c.json({ id: attachments[0]!.id }, 201);
    } catch (error) {
      return errorResponse(error, { quiet: c.req.raw.signal.aborted });
    }
  });
  const running = await serveHono(app);
  return { uploadUrl: `${running.origin}/upload`, close: () => running.close() };
});
