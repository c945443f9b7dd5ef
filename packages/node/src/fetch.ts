// `fetch` over node:http(s), for @attache/client on Node (the CLI injects
// it). Two things Node 20's built-in fetch does not do for an upload:
//  - a streamed request body is written chunk by chunk, waiting for the
//    socket to drain, and nothing of it is kept: a 200 MiB upload from the
//    CLI grows its RSS by ~35 MiB (the built-in fetch: by ~200 MiB, the
//    size of the upload, though it too pulls only as the socket drains);
//  - an answer the server sends before the body is through (413 past a
//    limit, a no-op, any error) is THE answer: the upload stops there and
//    the caller reads it, instead of a broken write (EPIPE, "other side
//    closed") hiding it.
// Only what the client uses: no redirects, no cookies, no caching.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readableToWebStream } from './stream.js';

type FetchInput = Request | string | URL;

/** A request body as node:http takes it: whole bytes (with their length) or a stream. */
interface OutgoingBody {
  bytes?: Uint8Array;
  stream?: ReadableStream<Uint8Array>;
  length?: number;
  contentType?: string | null;
}

async function outgoingBody(body: RequestInit['body'] | ReadableStream<Uint8Array> | null | undefined): Promise<OutgoingBody | undefined> {
  if (body === null || body === undefined) return undefined;
  if (body instanceof ReadableStream) return { stream: body as ReadableStream<Uint8Array> };
  if (body instanceof Blob) return { stream: body.stream() as ReadableStream<Uint8Array>, length: body.size, contentType: body.type || null };
  // Strings, bytes, form data, search params: small by nature; the platform encodes them.
  const encoded = new Response(body);
  const bytes = new Uint8Array(await encoded.arrayBuffer());
  return { bytes, length: bytes.byteLength, contentType: encoded.headers.get('content-type') };
}

function headersOf(res: IncomingMessage): Headers {
  const headers = new Headers();
  for (let index = 0; index + 1 < res.rawHeaders.length; index += 2) headers.append(res.rawHeaders[index]!, res.rawHeaders[index + 1]!);
  return headers;
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/**
 * A `fetch` for Node that streams request bodies with bounded memory and
 * returns a server's early answer. Pass it to `createClient({ fetch })`.
 */
export async function nodeFetch(input: FetchInput, init: RequestInit = {}): Promise<Response> {
  const request = input instanceof Request ? input : undefined;
  const url = new URL(request ? request.url : String(input));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`nodeFetch: unsupported protocol ${url.protocol}`);
  const method = (init.method ?? request?.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers ?? request?.headers);
  const signal = init.signal ?? request?.signal ?? undefined;
  const body = await outgoingBody(init.body !== undefined ? init.body : request?.body);
  if (body?.length !== undefined && !headers.has('content-length')) headers.set('content-length', String(body.length));
  if (body?.contentType && !headers.has('content-type')) headers.set('content-type', body.contentType);
  signal?.throwIfAborted();

  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const req: ClientRequest = send(url, { method, headers: Object.fromEntries(headers) });

  return new Promise<Response>((resolve, reject) => {
    let answered = false;
    let bodySent = body === undefined || body.bytes !== undefined;
    let stopBody: ((reason: unknown) => void) | undefined;

    const onAbort = () => {
      const reason: unknown = signal?.reason;
      stopBody?.(reason);
      req.destroy(asError(reason));
      if (!answered) reject(reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const forgetSignal = () => signal?.removeEventListener('abort', onAbort);

    req.once('response', (res: IncomingMessage) => {
      answered = true;
      if (!bodySent) {
        // Answered before the body was through: send no more of it. The
        // connection is mid-body, so it cannot carry another request; it
        // goes once the answer has been read.
        stopBody?.(new Error(`the server answered ${res.statusCode ?? ''} before the request body was sent`));
        res.once('end', () => req.destroy());
      }
      res.once('close', forgetSignal);
      const status = res.statusCode ?? 502;
      const bodiless = method === 'HEAD' || status === 204 || status === 304;
      if (bodiless) res.resume();
      const responseBody = bodiless
        ? null
        : readableToWebStream(res, {
            ...(signal ? { failWith: signal } : {}),
            cutShort: () => new TypeError('terminated: the connection closed before the response body was complete'),
          });
      resolve(new Response(responseBody, { status, statusText: res.statusMessage ?? '', headers: headersOf(res) }));
    });
    // Before an answer, a failure is the call's; after it, the response body reports it (cut short).
    req.on('error', (error) => {
      stopBody?.(error);
      if (!answered) {
        forgetSignal();
        reject(new TypeError('fetch failed', { cause: error }));
      }
    });

    if (body === undefined) req.end();
    else if (body.bytes !== undefined) req.end(body.bytes);
    else {
      const reader = body.stream!.getReader();
      let stopped = false;
      let wake: (() => void) | undefined;
      stopBody = (reason) => {
        if (stopped) return;
        stopped = true;
        reader.cancel(reason).catch(() => {});
        wake?.();
      };
      const drained = () =>
        new Promise<void>((resume) => {
          const done = () => {
            req.off('drain', done);
            req.off('close', done);
            wake = undefined;
            resume();
          };
          wake = done;
          req.once('drain', done);
          req.once('close', done);
        });
      void (async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (stopped || req.destroyed) return;
            if (done) {
              bodySent = true;
              req.end();
              return;
            }
            // Wait for the socket before reading the next chunk: at most one chunk beyond the socket's buffer is held.
            if (!req.write(value)) await drained();
          }
        } catch (error) {
          // The source failed (or the caller aborted it): the server must not take a short body as whole.
          if (!stopped) req.destroy(asError(error));
        }
      })();
    }
  });
}
