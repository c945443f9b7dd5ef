// A fetch-style handler as a Node request listener, for `http.createServer`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendWebResponse } from './response.js';
import { toWebRequest, type ToWebRequestOptions } from './request.js';

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/**
 * `http.createServer(toNodeListener(handler))`. The handler is expected to
 * answer every request (core's does, errors included); should it throw, the
 * client gets a bare 500 and the error is logged once.
 */
export function toNodeListener(
  handler: FetchHandler,
  options: ToWebRequestOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const request = toWebRequest(req, res, options);
    let response: Response;
    try {
      response = await handler(request);
    } catch (error) {
      console.error('attache: request handler failed', error);
      response = new Response(null, { status: 500 });
    }
    await sendWebResponse(res, response, request.signal).catch(() => {
      // The body failed after the headers went out; sendWebResponse already
      // destroyed the connection so the client sees a broken response.
    });
  };
}
