// Body parsing beside attache's routes, with Nest's public middleware API only.
//
// attache's routes must see request bodies untouched: a raw upload typed
// `application/json` or form-encoded is stored byte for byte, and a malformed
// lease-call body gets `400 invalid_body`. Nest's own parsers run before any
// route and have no per-route switch, so the app is created with
// `{ bodyParser: false }` and the module parses the app's other routes itself:
// a marker middleware bound to attache's controller (Nest resolves its full
// path: global prefix, RouterModule, parameters) flags attache's requests, and
// JSON and urlencoded parsers — Nest's defaults — bound to every route skip
// the flagged ones.
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';

type NextFunction = (error?: unknown) => void;
export type Middleware = (request: IncomingMessage, response: ServerResponse, next: NextFunction) => void;

const ATTACHE_REQUEST = Symbol('attache.request');
type Flagged = IncomingMessage & { [ATTACHE_REQUEST]?: true };

/** Bound to attache's controller: flags its requests before any parser below runs. */
export const flagAttacheRequest: Middleware = (request, _response, next) => {
  (request as Flagged)[ATTACHE_REQUEST] = true;
  next();
};

/** Nest's default parsers (JSON, and urlencoded with `extended: true`), skipping attache's requests. */
export function parsersSkippingAttache(): Middleware[] {
  return [express.json(), express.urlencoded({ extended: true })].map((parse): Middleware => {
    const skipping: Middleware = (request, response, next) =>
      (request as Flagged)[ATTACHE_REQUEST] ? next() : (parse as unknown as Middleware)(request, response, next);
    return skipping;
  });
}
