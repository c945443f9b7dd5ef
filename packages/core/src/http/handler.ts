// `createHandler`: the Web `Request → Response` entry point every host
// adapter mounts. It finds the route, answers CORS when asked to (cors.ts),
// enforces the bearer token, and turns every thrown error into a response
// through errors.ts.
import { AttacheError } from '../errors.js';
import type { AttachmentStore } from '../types.js';
import { corsPolicy, type CorsOptions } from './cors.js';
import { errorResponse } from './errors.js';
import { checkQuery, ROUTES, type HandlerAction, type Method, type RouteContext } from './routes.js';
import { matchTusPath, serveTus, UPLOAD_QUERY } from './tus.js';
import { UploadSlots } from './upload-slots.js';

export type { HandlerAction };

export interface AuthorizeContext {
  request: Request;
  action: HandlerAction;
  namespace?: string;
  key?: string;
}

/** `true` lets the request through; `false` answers 401; a Response is sent as is. */
export type AuthorizeHook = (context: AuthorizeContext) => boolean | Response | Promise<boolean | Response>;

export interface HandlerOptions {
  store: AttachmentStore;
  /** Where the routes are mounted (default `/v1`; `''` for the root). */
  basePath?: string;
  authorize?: AuthorizeHook;
  /** When set (non-empty), every route but `healthz` requires `Authorization: Bearer <token>`. */
  token?: string;
  /**
   * Uploads this handler streams at once; one more is refused at once with
   * 503 `unavailable` and `Retry-After: 1`, before its body is read.
   * Default: no limit.
   */
  maxConcurrentUploads?: number;
  /**
   * Lets browser apps on other origins call the API (tus-js-client, Uppy,
   * fetch): preflights from these origins are answered, and answers to them
   * carry the CORS headers. Default: none (same-origin callers only).
   */
  cors?: CorsOptions;
}

export interface HandleOptions {
  /**
   * The base path of this request, for hosts that decide the mount point per
   * request (a sub-app mounted under a parameter, Express's `req.baseUrl`).
   * Overrides the handler's `basePath`.
   */
  basePath?: string;
}

/**
 * A fetch-style handler: pass it wherever a `(Request) => Response` goes
 * (hosts may call it with extra arguments, which it ignores). `handle` is the
 * same with per-request options.
 */
export interface AttacheHandler {
  (request: Request): Promise<Response>;
  handle(request: Request, options?: HandleOptions): Promise<Response>;
}

const HEALTH_PATH = '/healthz';

export function createHandler(options: HandlerOptions): AttacheHandler {
  const defaultBasePath = normalizeBasePath(options.basePath ?? '/v1');
  const token = options.token ? options.token : undefined;
  const checkBearer = token === undefined ? undefined : bearerChecker(token);
  const uploadSlots = new UploadSlots(options.maxConcurrentUploads ?? Infinity);
  const cors = options.cors === undefined ? undefined : corsPolicy(options.cors);

  async function handle(request: Request, handleOptions?: HandleOptions): Promise<Response> {
    const basePath =
      handleOptions?.basePath === undefined ? defaultBasePath : normalizeBasePath(handleOptions.basePath);
    const response = await route(request, basePath);
    return cors === undefined ? response : cors.decorate(request, response);
  }

  async function route(request: Request, basePath: string): Promise<Response> {
    try {
      const routePath = relativeRoutePath(new URL(request.url).pathname, basePath);
      if (routePath === undefined) throw new AttacheError('not_found', 'no such route');
      const url = new URL(request.url);
      const context: RouteContext = {
        request,
        url,
        store: options.store,
        basePath,
        bearerAuth: token !== undefined,
        uploadSlots,
        authorize: (action, scope) => runAuthorize(options.authorize, { request, action, ...scope }),
      };
      // A browser's preflight carries no credentials: answered before authentication (tus paths keep their discovery headers).
      if (cors?.isAllowedPreflight(request)) {
        const tusPath = matchTusPath(routePath);
        return cors.answerPreflight(request, tusPath === undefined ? new Response(null) : await serveTus(context, tusPath.uploadId));
      }
      // Authenticate before revealing which paths exist.
      if (checkBearer && routePath !== HEALTH_PATH && !(await checkBearer(request.headers.get('Authorization')))) {
        throw new AttacheError('unauthorized', 'a valid bearer token is required');
      }
      // Resumable uploads (tus): `/uploads` and `/uploads/<id>`.
      const tus = matchTusPath(routePath);
      if (tus !== undefined) {
        if (!tus.methods.includes(request.method as never)) {
          return errorResponse(new AttacheError('method_not_allowed', `${request.method} is not allowed here`), {
            headers: { Allow: tus.methods.join(', '), 'Tus-Resumable': '1.0.0' },
          });
        }
        const refused = refuseQuery(url, tus.uploadId === undefined && request.method === 'POST' ? UPLOAD_QUERY : [], request);
        return refused ?? (await serveTus(context, tus.uploadId));
      }
      const methods = Object.hasOwn(ROUTES, routePath) ? ROUTES[routePath] : undefined;
      if (methods === undefined) throw new AttacheError('not_found', 'no such route');
      const route = methods[request.method as Method];
      if (route === undefined) {
        return errorResponse(new AttacheError('method_not_allowed', `${request.method} is not allowed here`), {
          headers: { Allow: Object.keys(methods).join(', ') },
        });
      }
      return refuseQuery(url, route.query, request) ?? (await route.run(context));
    } catch (error) {
      // A client that hung up caused whatever failed; nobody reads this answer.
      return errorResponse(error, { quiet: request.signal.aborted });
    }
  }
  const handler = (request: Request) => handle(request);
  return Object.assign(handler, { handle });
}

/** A query the route does not take, answered before the body is read (so the connection cannot be reused). */
function refuseQuery(url: URL, allowed: readonly string[], request: Request): Response | undefined {
  try {
    checkQuery(url.searchParams, allowed);
    return undefined;
  } catch (error) {
    return errorResponse(error, request.body === null ? {} : { headers: { Connection: 'close' } });
  }
}

async function runAuthorize(hook: AuthorizeHook | undefined, context: AuthorizeContext): Promise<Response | undefined> {
  if (hook === undefined) return undefined;
  const verdict = await hook(context);
  if (verdict instanceof Response) return verdict;
  if (verdict !== true) throw new AttacheError('unauthorized', 'not authorized for this request');
  return undefined;
}

function normalizeBasePath(basePath: string): string {
  const trimmed = basePath.replace(/\/+$/, '');
  return trimmed === '' || trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** `/v1/attachments/` → `/attachments`; a path outside the base path → undefined. */
function relativeRoutePath(pathname: string, basePath: string): string | undefined {
  if (pathname !== basePath && !pathname.startsWith(`${basePath}/`)) return undefined;
  const rest = pathname.slice(basePath.length);
  const withoutSlash = rest.length > 1 && rest.endsWith('/') ? rest.slice(0, -1) : rest;
  return withoutSlash === '' ? '/' : withoutSlash;
}

/**
 * Compares a presented bearer token with the configured one in constant
 * time: both are hashed to 32 bytes, so neither the length nor the position
 * of the first difference shows in the timing.
 */
function bearerChecker(token: string): (authorization: string | null) => Promise<boolean> {
  let expected: Promise<Uint8Array> | undefined;
  return async (authorization) => {
    expected ??= sha256(token);
    const match = authorization === null ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    const presented = await sha256(match?.[1] ?? '');
    const wanted = await expected;
    let difference = match === null ? 1 : 0;
    for (let index = 0; index < wanted.length; index++) difference |= wanted[index]! ^ presented[index]!;
    return difference === 0;
  };
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}
