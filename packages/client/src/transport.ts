// One HTTP call to an attache server: URL and bearer token, the JSON error
// body turned back into core's `AttacheError`, and bounded retries where a
// retry cannot repeat an effect (API.md §3, docs/http.md "Errors").
import { AttacheError, ERROR_STATUS, type ErrorCode } from '@attache/core';

export type FetchFunction = (input: Request | string | URL, init?: RequestInit) => Promise<Response>;

export interface RetryPolicy {
  /** Retries after the first attempt (default 3). */
  attempts: number;
  /** Longest wait between attempts, whatever `Retry-After` says (default 10 000 ms). */
  maxDelayMs: number;
}

export interface Transport {
  baseUrl: string;
  token: string | undefined;
  fetch: FetchFunction;
  retry: RetryPolicy;
  /** Sends a body with upload progress (XMLHttpRequest in browsers); undefined where there is none. */
  fetchWithUploadProgress: ((onUploadProgress: (sentBytes: number) => void) => FetchFunction) | undefined;
}

export interface CallOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'DELETE';
  path: string;
  /** Only the parameters docs/http.md lists for the route; undefined values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** A replayable body (string or bytes) may be retried; a stream never is. */
  body?: string | Uint8Array | Blob | ReadableStream<Uint8Array>;
  signal?: AbortSignal | undefined;
  /**
   * Which refusals are safe to try again: 503 `unavailable` (nothing of the
   * request was kept) for every call with a replayable body, `waiting` only
   * for an acquire that asked to wait.
   */
  retryWaiting?: boolean;
  /** Bytes of the body sent so far, when the transport can tell (`Transport.fetchWithUploadProgress`). */
  onUploadProgress?: ((sentBytes: number) => void) | undefined;
}

const KNOWN_CODES = new Set(Object.keys(ERROR_STATUS));

/** The code a bodiless error answer (HEAD) stands for. */
function codeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'invalid_query';
    case 401: return 'unauthorized';
    case 403: return 'lease_required';
    case 404: return 'attachment_not_found';
    case 405: return 'method_not_allowed';
    case 409: return 'waiting';
    case 413: return 'attachment_too_large';
    case 416: return 'range_not_satisfiable';
    case 503: return 'unavailable';
    default: return 'internal';
  }
}

function retryAfterOf(response: Response, bodySeconds: unknown): number | undefined {
  if (typeof bodySeconds === 'number' && Number.isFinite(bodySeconds)) return bodySeconds;
  const header = response.headers.get('retry-after');
  const seconds = header === null ? NaN : Number(header);
  return Number.isFinite(seconds) ? seconds : undefined;
}

/** The server's error answer as the same `AttacheError` core throws in-process. */
export async function errorOf(response: Response): Promise<AttacheError> {
  let parsed: { error?: unknown; detail?: unknown; retry_after_seconds?: unknown } = {};
  if (response.body) {
    const text = await response.text().catch(() => '');
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      parsed = { detail: text.slice(0, 200) };
    }
  }
  const code = typeof parsed.error === 'string' && KNOWN_CODES.has(parsed.error) ? (parsed.error as ErrorCode) : codeOfStatus(response.status);
  const detail = typeof parsed.detail === 'string' && parsed.detail !== '' ? parsed.detail : `HTTP ${response.status}`;
  const retryAfterSeconds = retryAfterOf(response, parsed.retry_after_seconds);
  return new AttacheError(code, detail, retryAfterSeconds === undefined ? {} : { retryAfterSeconds });
}

export function urlOf(transport: Transport, path: string, query: CallOptions['query'] = {}): string {
  const url = new URL(`${transport.baseUrl.replace(/\/+$/, '')}${path}`);
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    url.searchParams.set(name, String(value));
  }
  return url.toString();
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function replayable(body: CallOptions['body']): boolean {
  return !(body instanceof ReadableStream);
}

/**
 * Sends the request and returns the successful response (2xx, 206, 304);
 * an error answer rejects with its `AttacheError`.
 */
export async function call(transport: Transport, options: CallOptions): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (transport.token) headers.authorization = `Bearer ${transport.token}`;
  const url = urlOf(transport, options.path, options.query);
  const { onUploadProgress } = options;
  const send = onUploadProgress && transport.fetchWithUploadProgress ? transport.fetchWithUploadProgress(onUploadProgress) : transport.fetch;
  for (let attempt = 0; ; attempt++) {
    const init: RequestInit & { duplex?: 'half' } = { method: options.method, headers };
    // Uint8Array<ArrayBufferLike> is a valid body; lib.dom narrows it to ArrayBuffer-backed views.
    if (options.body !== undefined) init.body = options.body as BodyInit;
    // Node, Bun and Workers stream a request body only in half-duplex mode.
    if (options.body instanceof ReadableStream) init.duplex = 'half';
    if (options.signal) init.signal = options.signal;
    const response = await send(url, init);
    if (response.ok || response.status === 304) return response;
    const error = await errorOf(response);
    const safe =
      (error.code === 'unavailable' && replayable(options.body)) || (error.code === 'waiting' && options.retryWaiting === true);
    if (!safe || attempt >= transport.retry.attempts) throw error;
    const delayMs = Math.min((error.retryAfterSeconds ?? 1) * 1000, transport.retry.maxDelayMs);
    await sleep(delayMs, options.signal);
  }
}

/** A JSON answer's body. */
export async function callJson<T>(transport: Transport, options: CallOptions): Promise<T> {
  const response = await call(transport, options);
  return (await response.json()) as T;
}
