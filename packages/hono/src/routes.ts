// `attacheRoutes()`: core's Web handler as a Hono sub-app. Only `hono` and
// `@attache/core` are imported (no `node:` modules), so the same code runs
// on Node (@hono/node-server), Bun and Cloudflare Workers.
import { createHandler, type HandlerOptions } from '@attache/core/http';
import { Hono } from 'hono';
import { mountPrefixOf } from './mount-prefix.js';

/** Core's handler options; the base path is not among them because Hono decides it with `app.route()`. */
export type AttacheRoutesOptions = Omit<HandlerOptions, 'basePath'>;

export interface AttacheAppOptions extends AttacheRoutesOptions {
  /** Where `attacheApp()` mounts the routes (default `/v1`). */
  basePath?: string;
}

/**
 * A Hono app serving the attache HTTP API relative to wherever it is mounted:
 * `app.route('/v1', attacheRoutes({ store }))`, also nested
 * (`app.route('/api', parent)` with `parent.route('/v1', …)`) or under a
 * parameter (`app.route('/:tenant/v1', …)`).
 *
 * Each request is handed to core untouched (`c.req.raw`: its streaming body,
 * its abort signal, whatever middleware in front put there). Rather than
 * rewrite the URL to strip the prefix, which would need a new `Request`
 * (copying the body stream and the signal) and would show the authorize hook
 * and the OpenAPI document a URL the client never used, we give core a
 * handler the request's actual mount prefix as its base path.
 */
export function attacheRoutes(options: AttacheRoutesOptions): Hono {
  const handler = createHandler(options);
  const routes = new Hono();
  routes.all('/*', (c) => handler.handle(c.req.raw, { basePath: mountPrefixOf(c) }));
  return routes;
}

/** A Hono app with the routes at `/v1` (or `basePath`), e.g. `export default { fetch: attacheApp({ store }).fetch }`. */
export function attacheApp(options: AttacheAppOptions): Hono {
  const { basePath = '/v1', ...routeOptions } = options;
  return new Hono().route(basePath, attacheRoutes(routeOptions));
}
