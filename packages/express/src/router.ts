// `attache({ store })`: an Express router that hands every request under its
// mount to core's `createHandler`. The request/response conversion is
// @attache/node's; all behaviour, errors included, is core's.
import { AttacheError, createHandler, routeTakesJsonBody, type HandlerOptions } from '@attache/core';
import { sendWebResponse, toWebRequest } from '@attache/node';
import { Router, type ErrorRequestHandler, type Request as ExpressRequest, type Response as ExpressResponse, type NextFunction } from 'express';

export interface AttacheRouterOptions extends Omit<HandlerOptions, 'basePath'> {
  /** Build request URLs from `X-Forwarded-Proto`/`X-Forwarded-Host` (only behind a proxy that sets them). */
  trustProxy?: boolean;
}

export type AttacheRouter = Router & {
  /**
   * Error middleware for body-parser failures that happen before attache
   * sees the request (`express.json()` mounted app-wide rejects a malformed
   * JSON body before any router runs). Mount it right after the router,
   * `app.use('/v1', files, files.errors)`, and such requests get attache's
   * own `400 invalid_body` JSON instead of Express's HTML error page. Every
   * other error is passed on untouched.
   */
  errors: ErrorRequestHandler;
};

export function attache(options: AttacheRouterOptions): AttacheRouter {
  const { trustProxy = false, ...handlerOptions } = options;
  const handler = createHandler(handlerOptions);

  const serve = async (req: ExpressRequest, res: ExpressResponse, body?: ReadableStream<Uint8Array> | string) => {
    // req.originalUrl keeps the mount path; req.baseUrl is that mount path.
    const request = toWebRequest(req, res, {
      trustProxy,
      // Lease calls carry a JSON object whose value, not its bytes, matters: a parsed body can be re-serialized.
      reuseParsedJson: routeTakesJsonBody(req.method, req.path),
      ...(body === undefined ? {} : { body }),
    });
    // Express strips the mount path from `req.url`; core matches routes below it.
    const response = await handler.handle(request, { basePath: req.baseUrl });
    await sendWebResponse(res, response, request.signal);
  };

  const router = Router();
  router.use((req: ExpressRequest, res: ExpressResponse, next: NextFunction) => {
    serve(req, res).catch((error: unknown) => {
      // Core answers every error itself; what is left is a failure while
      // streaming the answer (the connection is already broken then).
      if (!res.headersSent) next(error);
    });
  });

  const errors: ErrorRequestHandler = (error: unknown, req, res, next) => {
    const rejected = bodyParserRejection(error);
    if (rejected === undefined || res.headersSent) {
      next(error);
      return;
    }
    serve(req, res, rejected).catch((failure: unknown) => {
      if (!res.headersSent) next(failure);
    });
  };
  return Object.assign(router, { errors });
}

/**
 * The body to give core for a request a body parser rejected: the raw text
 * of a malformed JSON body (core judges it and answers `invalid_body`), or a
 * body that fails with `invalid_body` saying why. Undefined for any error
 * that is not a body parser's.
 */
function bodyParserRejection(error: unknown): ReadableStream<Uint8Array> | string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { type, status, body, message } = error as { type?: unknown; status?: unknown; body?: unknown; message?: unknown };
  if (typeof type !== 'string' || typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  if (!/^(entity|charset|encoding|request\.size|parameters)\./.test(type)) return undefined;
  if (type === 'entity.parse.failed' && typeof body === 'string') return body;
  const failure = new AttacheError(
    'invalid_body',
    `the request body was rejected by a body parser mounted before attache (${type}: ${typeof message === 'string' ? message : 'rejected'})`,
  );
  return new ReadableStream<Uint8Array>({ start: (controller) => controller.error(failure) });
}
