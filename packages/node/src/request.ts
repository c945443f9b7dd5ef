// Node `IncomingMessage` → Web `Request`, for every Node adapter.
//
// The body is a pull stream: a chunk is read from the request only when the
// consumer asks for one, so a slow consumer leaves bytes in the kernel and
// TCP flow control slows the client (Node stops reading the socket once its
// own small buffer is full). A client that disconnects mid-body errors the
// stream — never closes it — so the engine sees a failed upload, not a short
// one, and keeps nothing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AttacheError, emptyStream, parseMediaType } from '@attache/core';
import { lightRequest } from './light-request.js';
import { readableToWebStream } from './stream.js';

export interface ToWebRequestOptions {
  /**
   * Origin to put in front of the request path (`https://files.example.com`).
   * Default: `http(s)://<Host header>` of the request itself.
   */
  baseUrl?: string;
  /**
   * Take the scheme and host from `X-Forwarded-Proto` / `X-Forwarded-Host`
   * (first value). Only behind a proxy that sets them: a client can send
   * them too. Default false.
   */
  trustProxy?: boolean;
  /** A body larger than this errors with `attachment_too_large` (413). Default: no limit here. */
  maxBodyBytes?: number;
  /**
   * When an upstream middleware already read a JSON body (`express.json()`
   * sets `req.body`), serialize `req.body` back into the body (default true).
   * The result is the same JSON value, not the same bytes: turn this off
   * where the bytes matter, and the body errors instead.
   */
  reuseParsedJson?: boolean;
  /** Use this body instead of reading `req` (for a body an upstream middleware consumed or rejected). */
  body?: ReadableStream<Uint8Array> | string;
}

/** Raised into the body stream when the client goes away before sending all of it. */
export class ClientDisconnectedError extends Error {
  constructor(message = 'the client disconnected before the request body was complete') {
    super(message);
    this.name = 'ClientDisconnectedError';
  }
}

/** What an Express/Connect request adds to `IncomingMessage` that we use. */
interface FrameworkFields {
  /** Express and Connect keep the path as the client sent it here when a router strips its mount path from `url`. */
  originalUrl?: string;
  /** Set by body parsers (`express.json()`). */
  body?: unknown;
}

const BODYLESS_METHODS = new Set(['GET', 'HEAD']);

export function toWebRequest(req: IncomingMessage, res?: ServerResponse, options: ToWebRequestOptions = {}): Request {
  const method = (req.method ?? 'GET').toUpperCase();
  return lightRequest({
    url: requestUrl(req, options),
    method,
    headers: webHeaders(req),
    signal: disconnectSignal(req, res),
    body: BODYLESS_METHODS.has(method) ? null : givenBody(options.body) ?? requestBody(req, res, options),
  });
}

function givenBody(body: ToWebRequestOptions['body']): ReadableStream<Uint8Array> | undefined {
  return typeof body === 'string' ? textStream(body) : body;
}

/** A stream of one chunk: `text` in UTF-8. */
function textStream(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

function requestUrl(req: IncomingMessage, options: ToWebRequestOptions): string {
  let target = (req as IncomingMessage & FrameworkFields).originalUrl ?? req.url ?? '/';
  // Absolute-form request targets (`GET http://host/path`): keep path and query only.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    const absolute = new URL(target);
    target = `${absolute.pathname}${absolute.search}`;
  }
  if (!target.startsWith('/')) target = `/${target}`;
  const origin = options.baseUrl === undefined ? requestOrigin(req, options.trustProxy ?? false) : new URL(options.baseUrl).origin;
  return `${origin}${target}`;
}

function requestOrigin(req: IncomingMessage, trustProxy: boolean): string {
  const encrypted = (req.socket as { encrypted?: boolean } | null)?.encrypted === true;
  let scheme = encrypted ? 'https' : 'http';
  let host = firstHeader(req, 'host') ?? firstHeader(req, ':authority');
  if (trustProxy) {
    const forwardedProto = firstValue(firstHeader(req, 'x-forwarded-proto'))?.toLowerCase();
    if (forwardedProto === 'http' || forwardedProto === 'https') scheme = forwardedProto;
    host = firstValue(firstHeader(req, 'x-forwarded-host')) ?? host;
  }
  if (host !== undefined) {
    try {
      // A host that does not parse (spaces, stray characters) must not break the request.
      return new URL(`${scheme}://${host}`).origin;
    } catch {
      // fall through to localhost
    }
  }
  return `${scheme}://localhost`;
}

function firstHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

/** `a, b` → `a` (proxies append their own value to a list). */
function firstValue(value: string | undefined): string | undefined {
  const first = value?.split(',', 1)[0]?.trim();
  return first === undefined || first === '' ? undefined : first;
}

/** The request's headers as Web `Headers` (HTTP/2 pseudo-headers and values Fetch rejects left out). */
export function webHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index]!;
    // HTTP/2 pseudo-headers (`:path`, `:authority`…) are not headers of a Request.
    if (name.startsWith(':')) continue;
    try {
      headers.append(name, raw[index + 1]!);
    } catch {
      // A value the Fetch standard rejects is dropped rather than failing the whole request.
    }
  }
  return headers;
}

/**
 * Aborts when the client goes away: before the request body is complete,
 * or (with `res`) before the response has finished.
 */
function disconnectSignal(req: IncomingMessage, res: ServerResponse | undefined): AbortSignal {
  const controller = new AbortController();
  const abort = () => {
    if (!controller.signal.aborted) controller.abort(new ClientDisconnectedError('the client disconnected'));
  };
  req.once('close', () => {
    if (!req.complete) abort();
  });
  res?.once('close', () => {
    if (!res.writableFinished) abort();
  });
  return controller.signal;
}

function requestBody(
  req: IncomingMessage,
  res: ServerResponse | undefined,
  options: ToWebRequestOptions,
): ReadableStream<Uint8Array> {
  if (req.readableEnded) return consumedBody(req, options.reuseParsedJson ?? true);
  return pullBody(req, options.maxBodyBytes, res === undefined ? undefined : discardUnreadBody(req, res));
}

/** How much of a body nobody read is drained after the answer, before the connection is closed instead. */
const DISCARD_LIMIT_BYTES = 16 * 1024 * 1024;
const DISCARD_LIMIT_MS = 1_000;

/**
 * An answer sent before the body was read to its end (413, a no-op, an
 * error): the client is still sending. Drain a bounded amount so that it
 * can read the answer on a live connection; past the bound, close the
 * connection rather than keep reading a body nobody wants.
 *
 * For an answer with `Connection: close` (core sends one whenever the body
 * was left unread), Node itself closes the socket as soon as the answer is
 * written, with the client's bytes unread: the kernel then resets the
 * connection, and a client busy writing its body can lose the answer it has
 * not read yet (it sees EPIPE instead of the 413). So the close is made in
 * stages (RFC 9112 §9.6): the answer and our FIN go out, we keep reading
 * and dropping the body for a bounded while, and only then close.
 */
function discardUnreadBody(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const abandon = new AbortController();
  res.once('finish', () => {
    if (req.complete || req.destroyed) return;
    const socket = req.socket;
    // Node's `socket.destroySoon()` (run just before this listener) waits for 'finish' to destroy: take that wait over.
    // (HTTP/1 only: an HTTP/2 stream ends alone, its connection stays.)
    const lingering = req.httpVersionMajor === 1 && socket.listeners('finish').includes(socket.destroy);
    if (lingering) socket.off('finish', socket.destroy);
    let drained = 0;
    const close = () => {
      clearTimeout(timer);
      req.off('data', count);
      req.off('end', onEnd);
      socket?.destroySoon?.();
    };
    const count = (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > DISCARD_LIMIT_BYTES) close();
    };
    // The whole body arrived: a closing connection goes now, a kept-alive one serves the next request.
    const onEnd = () => (lingering ? close() : (clearTimeout(timer), req.off('data', count)));
    const timer = setTimeout(close, DISCARD_LIMIT_MS);
    timer.unref();
    req.on('data', count);
    req.once('end', onEnd);
    abandon.abort();
  });
  return abandon.signal;
}

/** An upstream middleware read the stream already: rebuild JSON from `req.body`, else fail loudly. */
function consumedBody(req: IncomingMessage, reuseParsedJson: boolean): ReadableStream<Uint8Array> {
  const parsed = (req as IncomingMessage & FrameworkFields).body;
  // Core's parser, so "is this JSON" means here what it means to the handler.
  const mediaType = parseMediaType(req.headers['content-type'] ?? '')?.essence;
  if (reuseParsedJson && mediaType === 'application/json' && parsed !== undefined) {
    return textStream(JSON.stringify(parsed));
  }
  if (!hasDeclaredBody(req)) return emptyStream();
  // Handing on an empty stream would store an empty attachment in place of the real one.
  const error = new AttacheError(
    'invalid_body',
    `the request body (${mediaType ?? 'no valid Content-Type'}) was already read by an earlier middleware; mount attache before body parsers for this content type`,
  );
  return new ReadableStream<Uint8Array>({ start: (controller) => controller.error(error) });
}

function hasDeclaredBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function pullBody(
  req: IncomingMessage,
  maxBodyBytes: number | undefined,
  abandonWhen: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  const declared = Number(req.headers['content-length']);
  if (maxBodyBytes !== undefined && Number.isFinite(declared) && declared > maxBodyBytes) {
    // Refuse at once, without reading a byte of a body already known to be too large.
    const error = tooLarge(maxBodyBytes);
    return new ReadableStream<Uint8Array>({ start: (controller) => controller.error(error) });
  }
  return readableToWebStream(req, {
    ...(maxBodyBytes === undefined ? {} : { maxBytes: maxBodyBytes, tooLarge: () => tooLarge(maxBodyBytes) }),
    cutShort: () => new ClientDisconnectedError(),
    ...(abandonWhen === undefined ? {} : { abandonWhen }),
  });
}

function tooLarge(maxBodyBytes: number): AttacheError {
  return new AttacheError('attachment_too_large', `the request body is larger than ${maxBodyBytes} bytes`);
}
