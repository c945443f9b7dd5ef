// The shared HTTP contract (API.md §2–3), run against attacheRoutes() in a
// Hono app served by @hono/node-server: once mounted the documented way
// (app.route('/v1', …)), once nested under a parameterised prefix, since
// finding the mount prefix is the one thing this adapter does itself.
import { describeHttpContract } from '@attache/testing';
import { Hono } from 'hono';
import { attacheRoutes } from '../src/index.js';
import { serveHono } from './serve-hono.js';

describeHttpContract('hono, app.route("/v1")', async (options) => {
  const app = new Hono();
  app.route('/v1', attacheRoutes(options));
  const running = await serveHono(app);
  return { baseUrl: `${running.origin}/v1`, close: () => running.close() };
});

describeHttpContract('hono, nested under /api/:tenant/v1', async (options) => {
  const tenant = new Hono();
  tenant.route('/v1', attacheRoutes(options));
  const app = new Hono();
  app.route('/api/:tenant', tenant);
  const running = await serveHono(app);
  return { baseUrl: `${running.origin}/api/t%C3%A9nant/v1`, close: () => running.close() };
});
