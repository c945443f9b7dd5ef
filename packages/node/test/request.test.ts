// toWebRequest over real `node:http` (and `node:http2`) servers on 127.0.0.1.
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as http2Connect, createServer as createHttp2Server } from 'node:http2';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { isAttacheError } from '@attache/core';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientDisconnectedError, toWebRequest, type ToWebRequestOptions } from '../src/index.js';
import { deferred, delay, listen, settle, type Listening } from './servers.js';

const MiB = 1024 * 1024;
let listening: Listening | undefined;
afterEach(async () => {
  await listening?.close();
  listening = undefined;
});

/** Serves one conversion: the test gets the Request's parts back as JSON. */
async function echoServer(options: ToWebRequestOptions = {}, prepare?: (req: IncomingMessage) => void): Promise<string> {
  listening = await listen(async (req, res) => {
    prepare?.(req);
    const request = toWebRequest(req, res, options);
    const body = request.body === null ? null : await request.text();
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ url: request.url, method: request.method, headers: [...request.headers], body }));
  });
  return listening.url;
}

interface Echo {
  url: string;
  method: string;
  headers: [string, string][];
  body: string | null;
}

/** Sends raw header lines (fetch would normalise them). */
function rawRequest(url: string, options: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: string }): Promise<Echo> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const request = httpRequest({ host: target.hostname, port: target.port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers });
    request.on('error', reject);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Echo));
    });
    request.end(options.body);
  });
}

/** Writes `total` bytes as fast as the socket takes them; resolves when all were handed over. */
function pump(request: ReturnType<typeof httpRequest>, total: number, chunkSize = MiB): Promise<void> {
  const chunk = Buffer.alloc(chunkSize, 7);
  let closed = false;
  request.once('close', () => {
    closed = true;
    request.emit('drain'); // wakes a pending wait below
  });
  return (async () => {
    for (let sent = 0; sent < total; sent += chunkSize) {
      if (!request.write(chunk)) await new Promise<void>((resolve) => request.once('drain', resolve));
      if (closed) throw new Error('the request closed before its body was sent');
    }
    request.end();
  })();
}

describe('toWebRequest: URL, method and headers', () => {
  it('builds the URL from the Host header, with path and query as sent', async () => {
    const url = await echoServer();
    const echo = await rawRequest(url, { path: '/v1/attachments?key=a%2Fb&name=x', headers: { Host: 'files.example.com:8080' } });
    expect(echo.url).toBe('http://files.example.com:8080/v1/attachments?key=a%2Fb&name=x');
    expect(echo.method).toBe('GET');
  });

  it('ignores X-Forwarded-Proto and X-Forwarded-Host unless told to trust proxies', async () => {
    const headers = { Host: 'internal:3000', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'public.example.com, proxy.local' };
    const untrusted = await echoServer();
    expect((await rawRequest(untrusted, { path: '/x', headers })).url).toBe('http://internal:3000/x');
    await listening?.close();
    const trusted = await echoServer({ trustProxy: true });
    expect((await rawRequest(trusted, { path: '/x', headers })).url).toBe('https://public.example.com/x');
  });

  it('uses the baseUrl option as the origin whatever the Host header says', async () => {
    const url = await echoServer({ baseUrl: 'https://files.example.com/ignored/path' });
    expect((await rawRequest(url, { path: '/v1/healthz', headers: { Host: 'evil.example' } })).url).toBe('https://files.example.com/v1/healthz');
  });

  it('falls back to localhost for a Host header that is not a host', async () => {
    const url = await echoServer();
    expect((await rawRequest(url, { path: '/x', headers: { Host: 'bad host/name' } })).url).toBe('http://localhost/x');
  });

  it('prefers originalUrl (kept by Express and Connect when a router strips its mount path)', async () => {
    const url = await echoServer({}, (req) => {
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = req.url;
      req.url = '/attachments?key=a'; // what a router mounted at /v1 leaves in req.url
    });
    expect((await rawRequest(url, { path: '/v1/attachments?key=a' })).url).toMatch(/\/v1\/attachments\?key=a$/);
  });

  it('keeps every header, repeated ones joined, and the method', async () => {
    const url = await echoServer();
    const echo = await rawRequest(url, {
      method: 'DELETE',
      path: '/x',
      headers: { 'X-Lease-ID': 'lease-1', 'X-Multi': ['a', 'b'], Authorization: 'Bearer t' },
    });
    const headers = new Headers(echo.headers);
    expect(echo.method).toBe('DELETE');
    expect(headers.get('x-lease-id')).toBe('lease-1');
    expect(headers.get('x-multi')).toBe('a, b');
    expect(headers.get('authorization')).toBe('Bearer t');
  });

  it('drops HTTP/2 pseudo-headers and takes the host from :authority', async () => {
    const result = deferred<Echo>();
    const server = createHttp2Server((req, res) => {
      // The HTTP/2 compatibility request offers what toWebRequest reads of an IncomingMessage.
      const request = toWebRequest(req as unknown as IncomingMessage);
      result.resolve({ url: request.url, method: request.method, headers: [...request.headers], body: null });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = http2Connect(`http://127.0.0.1:${port}`);
    try {
      const stream = client.request({ ':path': '/v1/healthz?x=1', ':method': 'GET', 'x-custom': 'yes' });
      stream.resume();
      stream.end();
      const echo = await result.promise;
      expect(echo.url).toBe(`http://127.0.0.1:${port}/v1/healthz?x=1`);
      expect(echo.headers.some(([name]) => name.startsWith(':'))).toBe(false);
      expect(new Headers(echo.headers).get('x-custom')).toBe('yes');
    } finally {
      client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('toWebRequest: body', () => {
  it('has no body for GET and HEAD', async () => {
    const url = await echoServer();
    expect((await rawRequest(url, { path: '/x' })).body).toBeNull();
  });

  it('streams a POST body exactly, chunked or with Content-Length', async () => {
    const url = await echoServer();
    expect((await rawRequest(url, { method: 'POST', path: '/x', body: 'héllo body' })).body).toBe('héllo body');
    const response = await fetch(`${url}/y`, { method: 'PUT', body: 'second' });
    expect(((await response.json()) as Echo).body).toBe('second');
  });

  it('pulls: a 64 MiB upload to a stalled consumer leaves the socket paused and the bytes read bounded', async () => {
    const measured = deferred<{ early: number; late: number; total: number; sha256: string }>();
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      const reader = request.body!.getReader();
      let total = 0;
      const hash = createHash('sha256');
      const first = await reader.read();
      total += first.value!.byteLength;
      hash.update(first.value!);
      // The consumer stalls: if the body were pushed, Node would keep reading the socket.
      await delay(300);
      const early = req.socket.bytesRead;
      await delay(500);
      const late = req.socket.bytesRead;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        hash.update(value);
      }
      measured.resolve({ early, late, total, sha256: hash.digest('hex') });
      res.end('ok');
    });
    const request = httpRequest(`${listening.url}/upload`, { method: 'POST' });
    request.on('response', (response) => response.resume());
    await pump(request, 64 * MiB);
    const { early, late, total, sha256 } = await measured.promise;
    console.info(`pull body: server read ${(late / MiB).toFixed(2)} MiB of 64 MiB while the consumer stalled`);
    expect(late).toBeLessThan(4 * MiB);
    expect(late - early).toBeLessThan(256 * 1024);
    expect(total).toBe(64 * MiB);
    expect(sha256).toBe(createHash('sha256').update(Buffer.alloc(64 * MiB, 7)).digest('hex'));
  });

  it('answers early without cancelling: the client reads the answer, then a bounded drain ends the connection', async () => {
    const socketRead = deferred<number>();
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      const reader = request.body!.getReader();
      await reader.read();
      // The engine's way of refusing mid-body: stop reading, never cancel.
      reader.releaseLock();
      req.socket.once('close', () => socketRead.resolve(req.socket.bytesRead));
      res.writeHead(413, { 'Content-Type': 'application/json' }).end('{"error":"attachment_too_large"}');
    });
    const request = httpRequest(`${listening.url}/upload`, { method: 'POST' });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.on('response', (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode!, body }));
      });
      request.on('error', reject);
    });
    void pump(request, 256 * MiB).catch(() => {});
    expect(await answer).toEqual({ status: 413, body: '{"error":"attachment_too_large"}' });
    const read = await socketRead.promise;
    console.info(`early answer: server read ${(read / MiB).toFixed(1)} MiB of a 256 MiB body before closing`);
    expect(read).toBeLessThan(64 * MiB);
  });

  it('closes after an early Connection: close answer in stages: the answer, a bounded drain, then the close', async () => {
    const socketRead = deferred<{ answered: number; closed: number }>();
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      const reader = request.body!.getReader();
      await reader.read();
      reader.releaseLock();
      let answered = 0;
      res.once('finish', () => (answered = req.socket.bytesRead));
      req.socket.once('close', () => socketRead.resolve({ answered, closed: req.socket.bytesRead }));
      // What core answers when it leaves a body unread.
      res.writeHead(413, { 'Content-Type': 'application/json', Connection: 'close' }).end('{"error":"attachment_too_large"}');
    });
    // A client that keeps sending whatever comes back, even the server's FIN
    // (node:http's own client stops at the answer's end).
    const { port } = new URL(listening.url);
    const socket = netConnect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.write('POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.concat([Buffer.from(`${MiB.toString(16)}\r\n`), Buffer.alloc(MiB, 7), Buffer.from('\r\n')]);
    for (let sent = 0; sent < 256 && !socket.destroyed; sent++) {
      if (!socket.write(chunk)) await new Promise((resolve) => (socket.once('drain', resolve), socket.once('close', resolve)));
    }
    const { answered, closed } = await socketRead.promise;
    socket.destroy();
    console.info(`early answer with Connection: close: server read ${((closed - answered) / MiB).toFixed(1)} MiB after answering, then closed`);
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    // Node alone destroys the socket once the answer is written, with the
    // client's bytes unread: a client busy writing meets a reset and may
    // never read the answer (EPIPE where a 413 was sent).
    expect(closed - answered).toBeGreaterThan(8 * MiB);
    expect(closed).toBeLessThan(64 * MiB);
  });

  it('(control) the same measurement sees a push-based reader take most of the 64 MiB', async () => {
    const measured = deferred<number>();
    listening = await listen(async (req, res) => {
      const buffered: Buffer[] = [];
      req.on('end', () => res.end('ok'));
      req.on('data', (chunk: Buffer) => buffered.push(chunk)); // what a push-based body does
      await delay(800);
      measured.resolve(req.socket.bytesRead);
    });
    const request = httpRequest(`${listening.url}/upload`, { method: 'POST' });
    request.on('response', (response) => response.resume());
    await pump(request, 64 * MiB);
    expect(await measured.promise).toBeGreaterThan(32 * MiB);
  });

  it('errors the body stream (it does not close it) and aborts the signal when the client disconnects mid-body', async () => {
    const outcome = deferred<{ read: number; failure: unknown; aborted: boolean }>();
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      const reader = request.body!.getReader();
      let read = 0;
      const result = await settle(
        (async () => {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            read += value.byteLength;
          }
        })(),
      );
      outcome.resolve({ read, failure: result.ok ? undefined : result.error, aborted: request.signal.aborted });
    });
    const request = httpRequest(`${listening.url}/upload`, { method: 'POST', headers: { 'Content-Length': String(4 * MiB) } });
    request.on('error', () => {}); // the reset caused by destroy()
    request.write(Buffer.alloc(MiB, 1));
    await delay(100);
    request.destroy();
    const { read, failure, aborted } = await outcome.promise;
    expect(failure).toBeInstanceOf(Error);
    expect(read).toBeLessThan(4 * MiB);
    expect(aborted).toBe(true);
  });

  it('errors a chunked body the same way when the client disconnects mid-body', async () => {
    const outcome = deferred<unknown>();
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      const result = await settle(request.arrayBuffer());
      outcome.resolve(result.ok ? undefined : result.error);
    });
    const request = httpRequest(`${listening.url}/upload`, { method: 'POST' });
    request.on('error', () => {});
    request.write(Buffer.alloc(64 * 1024, 1));
    await delay(100);
    request.destroy();
    expect(await outcome.promise).toBeInstanceOf(Error);
  });

  it('keeps the signal quiet for a request that completes normally', async () => {
    const signalState = deferred<boolean>();
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      await request.text();
      res.end('done', () => setTimeout(() => signalState.resolve(request.signal.aborted), 50));
    });
    await (await fetch(`${listening.url}/x`, { method: 'POST', body: 'abc' })).text();
    expect(await signalState.promise).toBe(false);
  });

  it('aborts the signal when the client goes away while the response is pending', async () => {
    const aborted = deferred<unknown>();
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      request.signal.addEventListener('abort', () => aborted.resolve(request.signal.reason));
      // Never answers: only the client's disconnect ends this request.
    });
    const request = httpRequest(`${listening.url}/slow`);
    request.on('error', () => {});
    request.end();
    await delay(100);
    request.destroy();
    expect(await aborted.promise).toBeInstanceOf(ClientDisconnectedError);
  });

  it('errors with attachment_too_large past maxBodyBytes, declared or streamed', async () => {
    const failures: unknown[] = [];
    listening = await listen(async (req, res) => {
      const result = await settle(toWebRequest(req, res, { maxBodyBytes: 1000 }).arrayBuffer());
      failures.push(result.ok ? undefined : result.error);
      res.end();
    });
    await fetch(`${listening.url}/declared`, { method: 'POST', body: 'x'.repeat(1001) });
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(600));
        controller.enqueue(new Uint8Array(600));
        controller.close();
      },
    });
    await fetch(`${listening.url}/chunked`, { method: 'POST', body: chunked, duplex: 'half' } as RequestInit);
    await fetch(`${listening.url}/fits`, { method: 'POST', body: 'x'.repeat(1000) });
    expect(failures.map((failure) => isAttacheError(failure, 'attachment_too_large'))).toEqual([true, true, false]);
  });
});

describe('toWebRequest: a body already read by an upstream middleware', () => {
  /** Reads the body the way express.json() does, then converts. */
  async function afterJsonParser(options: ToWebRequestOptions = {}): Promise<string> {
    listening = await listen(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
        (req as IncomingMessage & { body?: unknown }).body = JSON.parse(text);
      }
      const result = await settle(toWebRequest(req, res, options).text());
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(result.ok ? { body: result.value } : { error: isAttacheError(result.error) ? result.error.code : String(result.error) }));
    });
    return listening.url;
  }

  it('serializes req.body back for application/json', async () => {
    const url = await afterJsonParser();
    const response = await fetch(`${url}/acquire`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{ "key": "a",  "ttl_seconds": 5 }' });
    const { body } = (await response.json()) as { body: string };
    expect(JSON.parse(body)).toEqual({ key: 'a', ttl_seconds: 5 });
  });

  it('errors with invalid_body for any other consumed body, rather than passing on an empty one', async () => {
    const url = await afterJsonParser();
    const response = await fetch(`${url}/upload`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'bytes that are gone' });
    expect(await response.json()).toEqual({ error: 'invalid_body' });
  });

  it('errors for consumed JSON too when reuseParsedJson is off (the bytes would differ)', async () => {
    const url = await afterJsonParser({ reuseParsedJson: false });
    const response = await fetch(`${url}/upload`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{ "a" : 1 }' });
    expect(await response.json()).toEqual({ error: 'invalid_body' });
  });

  it('gives an empty body when the consumed request declared none', async () => {
    const url = await afterJsonParser();
    const response = await fetch(`${url}/x`, { method: 'POST' });
    expect(await response.json()).toEqual({ body: '' });
  });
});

describe('toWebRequest: the Request it gives', () => {
  it('is a Request whose method, url, headers, signal and body are those converted, and whose other parts work too', async () => {
    const seen = deferred<Record<string, unknown>>();
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      const first = { instance: request instanceof Request, tag: Object.prototype.toString.call(request), sameHeaders: request.headers === request.headers };
      const copy = request.clone();
      const [original, cloned] = await Promise.all([request.json(), copy.text()]);
      seen.resolve({ ...first, original, cloned, cache: request.cache, used: request.bodyUsed, aborted: request.signal.aborted });
      res.end();
    });
    await fetch(`${listening.url}/x`, { method: 'POST', body: '{"a":1}', headers: { 'Content-Type': 'application/json' } });
    expect(await seen.promise).toEqual({
      instance: true,
      tag: '[object Request]',
      sameHeaders: true,
      original: { a: 1 },
      cloned: '{"a":1}',
      cache: 'default',
      used: true,
      aborted: false,
    });
  });

  it('converts a method fetch forbids (TRACE) instead of throwing, so the handler can refuse it', async () => {
    const methods = deferred<string>();
    listening = await listen((req, res) => {
      methods.resolve(toWebRequest(req, res).method);
      res.end('{}');
    });
    await new Promise<void>((resolve, reject) => {
      const request = httpRequest(`${listening!.url}/x`, { method: 'TRACE' }, (response) => {
        response.resume();
        response.on('end', resolve);
      });
      request.on('error', reject);
      request.end();
    });
    expect(await methods.promise).toBe('TRACE');
  });
});
