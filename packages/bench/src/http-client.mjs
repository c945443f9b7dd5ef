// A keep-alive HTTP/1.1 client on node:http for the load generator: the same
// client for every system, so differences are the servers'. Bodies are a
// Buffer (small uploads) or a Readable (large ones, never held whole);
// responses are read as text, or counted and dropped (downloads).
import { Agent, request } from 'node:http';
import { Readable } from 'node:stream';

const CHUNK = 256 * 1024;
/** One chunk of a repeating byte pattern, shared by every generated body (its content is irrelevant). */
const PATTERN = Buffer.from(new Uint8Array(CHUNK).map((_, i) => i % 251));

/** `size` bytes of the pattern, in memory: small upload bodies, sent again and again. */
export function bytesOf(size) {
  const bytes = Buffer.allocUnsafe(size);
  for (let offset = 0; offset < size; offset += CHUNK) PATTERN.copy(bytes, offset, 0, Math.min(CHUNK, size - offset));
  return bytes;
}

/** A pull stream of `size` bytes: parts of `prefix`, the pattern, then `suffix`. */
export function generatedBody(size, { prefix, suffix } = {}) {
  return Readable.from(
    (function* generate() {
      if (prefix) yield prefix;
      for (let left = size; left > 0; left -= CHUNK) yield left >= CHUNK ? PATTERN : PATTERN.subarray(0, left);
      if (suffix) yield suffix;
    })(),
    { objectMode: false, highWaterMark: CHUNK },
  );
}

export function createClient(baseUrl, { connections = 16 } = {}) {
  // A system's connections sit idle while the others are measured, about as
  // long as Node servers keep an idle connection (5 s). With a `timeout` set,
  // Node's agent drops an idle socket a second before the server's announced
  // `Keep-Alive: timeout=` (without one it ignores the hint), and a request
  // that still meets a connection the server closed is sent again (below).
  const agent = new Agent({ keepAlive: true, maxSockets: connections, timeout: 60_000 });
  const { hostname, port } = new URL(baseUrl);

  /** Sends a request; resolves with status, headers and the body as text, or its length with `discard`. */
  async function send(options) {
    try {
      return await sendOnce(options);
    } catch (error) {
      // What Node's documentation prescribes for a reused keep-alive socket
      // the server closed as the request left: send it again, when its body
      // is in memory (a streamed body has been consumed).
      if (!(error.reusedSocket && error.code === 'ECONNRESET' && !isStream(options.body))) throw error;
      return sendOnce(options);
    }
  }

  function sendOnce({ method = 'GET', path, headers = {}, body, discard = false }) {
    return new Promise((resolve, reject) => {
      const req = request({ agent, hostname, port, method, path, headers }, (res) => {
        let text = '';
        let length = 0;
        if (!discard) res.setEncoding('utf8');
        res.on('data', (chunk) => {
          length += chunk.length;
          if (!discard) text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text, length }));
        res.on('error', reject);
      });
      req.on('error', (error) => reject(Object.assign(error, { reusedSocket: req.reusedSocket })));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else body.pipe(req);
    });
  }

  /** `send`, failing on any status but 2xx, with the answer's text in the error. */
  async function ok(options) {
    const answer = await send(options);
    if (answer.status < 200 || answer.status > 299) {
      throw new Error(`${options.method ?? 'GET'} ${options.path}: ${answer.status} ${answer.text.slice(0, 300)}`);
    }
    return answer;
  }

  return { send, ok, close: () => agent.destroy() };
}

const isStream = (body) => body !== undefined && !Buffer.isBuffer(body);
