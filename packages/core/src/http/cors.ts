// CORS (https://fetch.spec.whatwg.org/#http-cors-protocol), when the host
// asks for it: browser apps on other origins (tus-js-client, Uppy, fetch)
// may call the API. A preflight from an allowed origin is answered here,
// before authentication (browsers send no credentials on a preflight); every
// other answer to an allowed origin says so and exposes the headers a client
// reads (tus's Location and Upload-Offset, the attachment's id and digests).
// Requests from other origins are served as before, without CORS headers,
// so the browser keeps their answers from the page.

export interface CorsOptions {
  /**
   * Origins allowed to call from a browser, exactly as the browser sends
   * them (`https://app.example.com`, `http://localhost:5173`: scheme, host,
   * port; no path), or `'*'` for any origin.
   */
  origins: readonly string[] | '*';
  /**
   * Let allowed origins send cookies or HTTP authentication
   * (`Access-Control-Allow-Credentials: true`; the client opts in with
   * `credentials: 'include'`, Uppy's `withCredentials`). Not with `'*'`.
   * Default false.
   */
  credentials?: boolean;
  /** How long a browser may reuse a preflight answer, in seconds (default 600). */
  maxAgeSeconds?: number;
}

/** Every method the API's routes take (attachments, leases, tus). */
export const CORS_ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** The request headers the API reads (beyond the CORS-safelisted ones). */
export const CORS_ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Content-Digest',
  'If-None-Match',
  'Range',
  'X-Lease-ID',
  'X-Txn-ID',
  'X-Fencing-Token',
  'X-Attachment-CRC32',
  'X-Requested-With',
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Checksum',
  // Refused with a JSON error (Upload-Length is required), which the page must be able to read.
  'Upload-Defer-Length',
] as const;

/** The response headers a browser client may read (beyond the CORS-safelisted ones). */
export const CORS_EXPOSED_HEADERS = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Expires',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'X-Attachment-ID',
  'X-Attachment-Name',
  'X-Attachment-Size',
  'X-Attachment-SHA256',
  'X-Attachment-CRC32',
  'X-Fencing-Token',
  'ETag',
  'Content-Disposition',
  'Content-Digest',
  'Content-Range',
  'Content-Length',
  'Accept-Ranges',
  'Retry-After',
  'Allow',
  'WWW-Authenticate',
] as const;

const DEFAULT_MAX_AGE_SECONDS = 600;

export interface CorsPolicy {
  /** A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin. */
  isAllowedPreflight(request: Request): boolean;
  /** `response` (the route's own answer to the OPTIONS, e.g. tus discovery) as the preflight's answer: 204, CORS headers added. */
  answerPreflight(request: Request, response: Response): Response;
  /** `response` with the CORS headers for `request`'s origin, if allowed (and `Vary: Origin` when the answer depends on it). */
  decorate(request: Request, response: Response): Response;
}

/** Checks `options` (a mistake throws at startup) and returns the policy the handler applies. */
export function corsPolicy(options: CorsOptions): CorsPolicy {
  const anyOrigin = options.origins === '*';
  const credentials = options.credentials === true;
  if (anyOrigin && credentials) {
    throw new TypeError("cors: credentials cannot be allowed for every origin ('*'); list the origins");
  }
  const allowed = new Set(anyOrigin ? [] : (options.origins as readonly string[]).map(checkOrigin));
  const maxAge = options.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
  if (!Number.isInteger(maxAge) || maxAge < 0) throw new TypeError(`cors: maxAgeSeconds must be a non-negative integer, got ${maxAge}`);
  // With a list (or credentials) the answer names the caller's origin, so caches must key on it.
  const echoesOrigin = !anyOrigin || credentials;

  const allowedOrigin = (request: Request): string | undefined => {
    const origin = request.headers.get('Origin');
    if (origin === null || !(anyOrigin || allowed.has(origin))) return undefined;
    return echoesOrigin ? origin : '*';
  };

  const originHeaders = (origin: string): [string, string][] => {
    const headers: [string, string][] = [['Access-Control-Allow-Origin', origin]];
    if (credentials) headers.push(['Access-Control-Allow-Credentials', 'true']);
    return headers;
  };

  return {
    isAllowedPreflight: (request) =>
      request.method === 'OPTIONS' && request.headers.has('Access-Control-Request-Method') && allowedOrigin(request) !== undefined,
    answerPreflight(request, response) {
      const headers = new Headers(response.headers);
      for (const [name, value] of originHeaders(allowedOrigin(request)!)) headers.set(name, value);
      headers.set('Access-Control-Allow-Methods', CORS_ALLOWED_METHODS.join(', '));
      headers.set('Access-Control-Allow-Headers', CORS_ALLOWED_HEADERS.join(', '));
      headers.set('Access-Control-Max-Age', String(maxAge));
      if (echoesOrigin) headers.append('Vary', 'Origin');
      return new Response(null, { status: 204, headers });
    },
    decorate(request, response) {
      const origin = allowedOrigin(request);
      const added: [string, string][] = origin === undefined ? [] : [...originHeaders(origin), ['Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS.join(', ')]];
      if (echoesOrigin) added.push(['Vary', 'Origin']);
      return added.length === 0 ? response : withHeaders(response, added);
    },
  };
}

/**
 * The origins of a host's setting (an environment variable): `*`, or
 * origins separated by commas. Checked: a TypeError says what is wrong.
 */
export function parseCorsOrigins(text: string): CorsOptions {
  const options: CorsOptions = {
    origins: text.trim() === '*' ? '*' : text.split(',').map((origin) => origin.trim()).filter((origin) => origin !== ''),
  };
  checkCorsOptions(options);
  return options;
}

/** Throws a TypeError saying what is wrong with `options` (for hosts that check their configuration before starting). */
export function checkCorsOptions(options: CorsOptions): void {
  corsPolicy(options);
}

/** `https://App.example.com:443` is not what a browser sends: the configured value must be the origin itself. */
function checkOrigin(origin: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(origin);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || parsed.origin === 'null' || parsed.origin !== origin) {
    const hint = parsed !== undefined && parsed.origin !== 'null' ? ` (did you mean "${parsed.origin}"?)` : '';
    throw new TypeError(`cors: "${origin}" is not an origin as browsers send it (scheme://host[:port], no path)${hint}`);
  }
  return origin;
}

/** Adds headers in place when the response allows it; a response with immutable headers (`Response.redirect`) is copied. */
function withHeaders(response: Response, added: readonly [string, string][]): Response {
  const apply = (headers: Headers) => {
    for (const [name, value] of added) {
      if (name === 'Vary') headers.append(name, value);
      else headers.set(name, value);
    }
  };
  try {
    apply(response.headers);
    return response;
  } catch {
    const headers = new Headers(response.headers);
    apply(headers);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}
