// Keeps the application's body parsers off attache's routes.
//
// Nest's Express platform registers `express.json()` and
// `express.urlencoded()` for every request before any route runs. On
// attache's routes that would break the contract: a raw upload typed
// `application/json` or form-encoded would be consumed (and capped at
// 100 kB) before the handler sees it, and a malformed lease-call body would
// get Nest's error instead of `400 invalid_body`. Nest offers no per-route
// switch, and module middleware runs after those parsers, so once the routes
// are registered (`onModuleInit`) the parser layers of the Express router are
// wrapped: a request that one of attache's routes matches skips them, and
// its body reaches core's handler untouched. Every other request is parsed
// exactly as before.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Names body-parser gives its middleware functions (Nest looks them up by the same names). */
const BODY_PARSER_NAMES = new Set(['jsonParser', 'urlencodedParser', 'textParser', 'rawParser']);

type NextFunction = (error?: unknown) => void;
type Middleware = (request: IncomingMessage & { path?: string }, response: ServerResponse, next: NextFunction) => void;

/** The parts of an Express 5 router layer this module reads (router 2.x). */
interface RouterLayer {
  handle?: unknown;
  route?: { path?: unknown };
  match?: (path: string) => unknown;
}

export interface BypassResult {
  /** Parser layers now skipping attache's routes. */
  wrappedParsers: number;
  /** Route layers of attache found in the router. */
  routes: number;
}

/**
 * Makes every body-parser layer of `expressApp` skip requests that a route
 * with `routeParameter` (attache's catch-all, e.g. `{*attacheRoute}`)
 * matches. Safe to call more than once (wrapped layers are not wrapped again).
 */
export function bypassBodyParsers(expressApp: unknown, routeParameter: string): BypassResult {
  const stack = routerStack(expressApp);
  if (stack === undefined) return { wrappedParsers: 0, routes: 0 };
  const marker = `{*${routeParameter}}`;
  const routes = stack.filter(
    (layer): layer is RouterLayer & { match: (path: string) => unknown } =>
      typeof layer.route?.path === 'string' && layer.route.path.endsWith(marker) && typeof layer.match === 'function',
  );
  if (routes.length === 0) return { wrappedParsers: 0, routes: 0 };
  const targetsAttache = (path: string): boolean => routes.some((layer) => Boolean(layer.match(path)));

  let wrappedParsers = 0;
  for (const layer of stack) {
    const parse = layer.handle;
    if (typeof parse !== 'function' || !BODY_PARSER_NAMES.has(parse.name) || WRAPPED.has(parse)) continue;
    const skipping: Middleware = (request, response, next) => {
      if (typeof request.path === 'string' && targetsAttache(request.path)) return next();
      (parse as Middleware)(request, response, next);
    };
    // Nest checks for an applied parser by function name; keep it.
    Object.defineProperty(skipping, 'name', { value: parse.name });
    WRAPPED.add(skipping);
    layer.handle = skipping;
    wrappedParsers += 1;
  }
  return { wrappedParsers, routes: routes.length };
}

const WRAPPED = new WeakSet<object>();

function routerStack(expressApp: unknown): RouterLayer[] | undefined {
  if (typeof expressApp !== 'function' && (typeof expressApp !== 'object' || expressApp === null)) return undefined;
  const router: unknown = Reflect.get(expressApp, 'router');
  if (typeof router !== 'function' && (typeof router !== 'object' || router === null)) return undefined;
  const stack: unknown = Reflect.get(router, 'stack');
  return Array.isArray(stack) ? (stack as RouterLayer[]) : undefined;
}
