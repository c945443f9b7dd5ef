// Uploads with progress in browsers. `fetch` reports nothing while a request
// body is sent, and browsers cannot stream one over HTTP/1.1, so there a
// collected body goes out through XMLHttpRequest, whose `upload.onprogress`
// counts bytes actually sent. The answer comes back as a `Response`, so the
// rest of the client reads it exactly as it reads fetch's.
import type { FetchFunction } from './transport.js';

/** Statuses whose `Response` must not have a body. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** Whether this runtime has XMLHttpRequest (browsers; not Node, Bun or Workers). */
export function hasXmlHttpRequest(): boolean {
  return typeof (globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest === 'function';
}

function headersOf(raw: string): Headers {
  const headers = new Headers();
  for (const line of raw.trim().split(/[\r\n]+/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      // A header the Headers class refuses (odd bytes from a proxy) is dropped, as fetch would.
    }
  }
  return headers;
}

/** A fetch over XMLHttpRequest that reports the bytes of the request body sent so far. */
export function xhrFetch(onUploadProgress: (sentBytes: number) => void): FetchFunction {
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason);
      const request = new XMLHttpRequest();
      request.open(init.method ?? 'GET', input instanceof Request ? input.url : String(input));
      new Headers(init.headers).forEach((value, name) => request.setRequestHeader(name, value));
      request.responseType = 'blob';
      request.upload.onprogress = (event) => onUploadProgress(event.loaded);
      const onAbort = () => request.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = () => signal?.removeEventListener('abort', onAbort);
      request.onload = () => {
        settle();
        const body = NULL_BODY_STATUSES.has(request.status) ? null : (request.response as Blob);
        resolve(new Response(body, { status: request.status, statusText: request.statusText, headers: headersOf(request.getAllResponseHeaders()) }));
      };
      // As fetch: a network failure is a TypeError, an abort the signal's reason.
      request.onerror = () => {
        settle();
        reject(new TypeError('Failed to fetch: the connection closed before an answer arrived'));
      };
      request.onabort = () => {
        settle();
        reject(signal?.reason ?? new DOMException('The upload was aborted', 'AbortError'));
      };
      request.send((init.body ?? null) as XMLHttpRequestBodyInit | null);
    });
}
