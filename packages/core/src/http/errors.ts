// The one place where an error becomes an HTTP response (API.md §3).
// `AttacheError` carries its own status (errors.ts holds the code → status
// table); anything else is a bug or an outage and answers a generic 500, so a
// stack trace or internal message never reaches a client.
import { AttacheError } from '../errors.js';
import { JSON_HEADERS, jsonText } from './json.js';

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

/**
 * The JSON body of an `AttacheError` (API.md §3). Exported for adapters that
 * hand errors to their framework instead of answering themselves (the NestJS
 * upload interceptor), so the body is built in one place.
 */
export function errorBody(error: AttacheError): ErrorBody {
  const body: ErrorBody = { error: error.code, detail: error.message };
  const seconds = retryAfterOf(error);
  if (seconds !== undefined) body.retry_after_seconds = seconds;
  return body;
}

/** Retry-After is whole seconds; never 0, or clients would spin. */
function retryAfterOf(error: AttacheError): number | undefined {
  if (error.retryAfterSeconds === undefined || !Number.isFinite(error.retryAfterSeconds)) return undefined;
  return Math.max(1, Math.ceil(error.retryAfterSeconds));
}

/**
 * The one error mapper: an `AttacheError` (or anything else, as a generic
 * 500) → status, headers and JSON body. Adapters whose framework writes the
 * answer itself (multer's error middleware, a Nest exception) use this;
 * everything that answers with a Web `Response` uses `errorResponse`.
 */
export interface ErrorAnswer {
  status: number;
  /** `Content-Type`, `Cache-Control`, and `Retry-After`/`WWW-Authenticate`/the caller's extra headers where they apply. */
  headers: Record<string, string>;
  body: ErrorBody;
  /** `body` as sent: JSON text ending in a newline. */
  text: string;
}

export function errorAnswer(error: unknown, options: ErrorResponseOptions = {}): ErrorAnswer {
  const headers: Record<string, string> = { ...JSON_HEADERS, ...options.headers };
  if (!(error instanceof AttacheError)) {
    if (!options.quiet) console.error('attache: unexpected error while serving a request', error);
    const body: ErrorBody = { error: 'internal', detail: 'internal server error' };
    return { status: 500, headers, body, text: jsonText(body) };
  }

  if (error.status === 503 && error.cause !== undefined && !options.quiet) logOutage(error);
  const body = errorBody(error);
  if (body.retry_after_seconds !== undefined) headers['Retry-After'] = String(body.retry_after_seconds);
  if (error.code === 'unauthorized' && !hasHeader(headers, 'WWW-Authenticate')) headers['WWW-Authenticate'] = 'Bearer';
  return { status: error.status, headers, body, text: jsonText(body) };
}

export function errorResponse(error: unknown, options: ErrorResponseOptions = {}): Response {
  const { status, headers, text } = errorAnswer(error, options);
  return new Response(text, { status, headers });
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  const lower = name.toLowerCase();
  return Object.keys(headers).some((header) => header.toLowerCase() === lower);
}

/** One line per kind of outage per interval: a full disk fails every request, and the log must stay readable. */
const OUTAGE_LOG_INTERVAL_MS = 60_000;
const outagesLogged = new Map<string, number>();

/**
 * A 503 that a storage port raised for a real cause (a full disk, an
 * unreachable database): the operator must learn that cause, once, in one
 * line, not as a stack trace per request.
 */
function logOutage(error: AttacheError): void {
  const now = Date.now();
  const last = outagesLogged.get(error.message);
  if (last !== undefined && now - last < OUTAGE_LOG_INTERVAL_MS) return;
  outagesLogged.set(error.message, now);
  const line = `attache: answering 503 unavailable: ${error.message}; cause: ${describeCause(error.cause)} (not logged again for ${OUTAGE_LOG_INTERVAL_MS / 1000} s)`;
  console.error(line.replace(/\s*\n\s*/g, ' '));
}

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as { code?: unknown }).code;
  const label = typeof code === 'string' && !cause.message.startsWith(code) ? `${cause.name} ${code}` : cause.name;
  return `${label}: ${cause.message}`;
}
