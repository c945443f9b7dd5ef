// The one place where an error becomes an HTTP response (API.md §3).
// `AttacheError` carries its own status (errors.ts holds the code → status
// table); anything else is a bug or an outage and answers a generic 500, so a
// stack trace or internal message never reaches a client.
import { AttacheError } from '../errors.js';
import { JSON_HEADERS } from './json.js';

export interface ErrorResponseOptions {
  /** Extra headers: `Allow` for 405, `Content-Range` for 416, `WWW-Authenticate` for 401. */
  headers?: Record<string, string>;
  /** Skip logging an unexpected error (the client went away, nobody reads the answer). */
  quiet?: boolean;
}

export interface ErrorBody {
  error: string;
  detail: string;
  retry_after_seconds?: number;
}

export function errorResponse(error: unknown, options: ErrorResponseOptions = {}): Response {
  const headers = new Headers(JSON_HEADERS);
  for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value);

  if (!(error instanceof AttacheError)) {
    if (!options.quiet) console.error('attache: unexpected error while serving a request', error);
    const body: ErrorBody = { error: 'internal', detail: 'internal server error' };
    return new Response(JSON.stringify(body), { status: 500, headers });
  }

  const body: ErrorBody = { error: error.code, detail: error.message };
  if (error.retryAfterSeconds !== undefined && Number.isFinite(error.retryAfterSeconds)) {
    // Retry-After is whole seconds; never 0, or clients would spin.
    const seconds = Math.max(1, Math.ceil(error.retryAfterSeconds));
    body.retry_after_seconds = seconds;
    headers.set('Retry-After', String(seconds));
  }
  if (error.code === 'unauthorized' && !headers.has('WWW-Authenticate')) headers.set('WWW-Authenticate', 'Bearer');
  return new Response(JSON.stringify(body), { status: error.status, headers });
}
