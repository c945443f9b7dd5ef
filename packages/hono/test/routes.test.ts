// attacheRoutes() over real HTTP: wherever Hono mounts it, core sees the
// request Hono received and answers relative to the mount prefix.
import { createAttachmentStore, memoryBlobs, memoryMetadata, type AttachmentStore, type BlobStore } from '@attache/core';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { logger } from 'hono/logger';
import { afterEach, describe, expect, it } from 'vitest';
import { attacheApp, attacheRoutes } from '../src/index.js';
import { patternStream, postStreaming, serveHono, sha256Hex, type RunningHono } from './serve-hono.js';

interface Fixture {
  store: AttachmentStore;
  blobs: BlobStore;
}

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newStore(): Fixture {
  const blobs = memoryBlobs();
  const store = createAttachmentStore({ metadata: memoryMetadata(), blobs, sweepIntervalSeconds: 0 });
  cleanups.push(() => store.close());
  return { store, blobs };
}

async function start(app: Hono): Promise<RunningHono> {
  const running = await serveHono(app);
  cleanups.push(() => running.close());
  return running;
}

async function openApiServerUrl(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  const document = (await response.json()) as { servers: Array<{ url: string }> };
  return document.servers[0]!.url;
}

async function uploadDocument(base: string, name: string, body: BodyInit, init: RequestInit = {}): Promise<Response> {
  return postStreaming(`${base}/attachments?name=${encodeURIComponent(name)}`, body, init);
}

async function countBlobs(blobs: BlobStore): Promise<number> {
  let count = 0;
  for await (const _blob of blobs.list('')) count++;
  return count;
}

describe('attacheRoutes mounted with app.route()', () => {
  it('serves the API under /v1 and nothing outside it', async () => {
    const { store } = newStore();
    const app = new Hono();
    app.route('/v1', attacheRoutes({ store }));
    app.get('/elsewhere', (c) => c.text('host app'));
    const { origin } = await start(app);

    expect(await (await fetch(`${origin}/v1/healthz`)).json()).toEqual({ ok: true });
    expect(await openApiServerUrl(`${origin}/v1/openapi.json`)).toBe('/v1');
    const unknownRoute = await fetch(`${origin}/v1/no-such-route`);
    expect(unknownRoute.status).toBe(404);
    expect(await unknownRoute.json()).toMatchObject({ error: 'not_found' });
    expect(await (await fetch(`${origin}/elsewhere`)).text()).toBe('host app');
    // `/v1x` is not under `/v1`: Hono's own 404, not attache's JSON.
    const sibling = await fetch(`${origin}/v1x/healthz`);
    expect(sibling.status).toBe(404);
    expect(sibling.headers.get('content-type')).not.toContain('application/json');
    await sibling.body?.cancel();
  });

  it('serves the API under a nested prefix (app.route("/api", parent) where parent routes "/v1")', async () => {
    const { store } = newStore();
    const parent = new Hono();
    parent.route('/v1', attacheRoutes({ store }));
    const app = new Hono();
    app.route('/api', parent);
    const { origin } = await start(app);

    expect(await (await fetch(`${origin}/api/v1/healthz`)).json()).toEqual({ ok: true });
    expect(await openApiServerUrl(`${origin}/api/v1/openapi.json`)).toBe('/api/v1');
    const withTrailingSlash = await fetch(`${origin}/api/v1/healthz/`);
    expect(await withTrailingSlash.json()).toEqual({ ok: true });
    const notMounted = await fetch(`${origin}/v1/healthz`);
    expect(notMounted.status).toBe(404);
    await notMounted.body?.cancel();
  });

  it('serves the API under a Hono basePath() and a parameterised prefix, percent-encoded values included', async () => {
    const { store } = newStore();
    const app = new Hono().basePath('/api');
    app.route('/:tenant/v1', attacheRoutes({ store }));
    const { origin } = await start(app);

    expect(await openApiServerUrl(`${origin}/api/acme/v1/openapi.json`)).toBe('/api/acme/v1');
    expect(await openApiServerUrl(`${origin}/api/t%C3%A9nant/v1/openapi.json`)).toBe('/api/t%C3%A9nant/v1');
    expect(await (await fetch(`${origin}/api/t%C3%A9nant/v1/healthz`)).json()).toEqual({ ok: true });
  });

  it('attacheApp() serves the routes at /v1, or at the basePath given', async () => {
    const { store } = newStore();
    const { origin } = await start(attacheApp({ store }));
    expect(await (await fetch(`${origin}/v1/healthz`)).json()).toEqual({ ok: true });

    const custom = await start(attacheApp({ store, basePath: '/files' }));
    expect(await openApiServerUrl(`${custom.origin}/files/openapi.json`)).toBe('/files');
  });

  it('hands core the very Request Hono received, so the authorize hook sees the URL the client used', async () => {
    const { store } = newStore();
    const seenByHono = new WeakSet<Request>();
    const authorizedUrls: string[] = [];
    const app = new Hono();
    app.use('*', async (c, next) => {
      seenByHono.add(c.req.raw);
      await next();
    });
    app.route(
      '/api/v1',
      attacheRoutes({
        store,
        authorize: ({ request, action }) => {
          authorizedUrls.push(`${action} ${new URL(request.url).pathname}${new URL(request.url).search}`);
          return seenByHono.has(request);
        },
      }),
    );
    const { origin } = await start(app);

    const listed = await fetch(`${origin}/api/v1/attachments?key=orders/42`);
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ namespace: 'default', key: 'orders/42', attachments: [] });
    expect(authorizedUrls).toEqual(['list /api/v1/attachments?key=orders/42']);
  });

  it('enforces the bearer token everywhere but healthz', async () => {
    const { store } = newStore();
    const app = new Hono();
    app.route('/v1', attacheRoutes({ store, token: 'sesame' }));
    const { origin } = await start(app);

    expect((await fetch(`${origin}/v1/healthz`)).status).toBe(200);
    const anonymous = await fetch(`${origin}/v1/attachments?key=k`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: 'unauthorized' });
    const authorized = await fetch(`${origin}/v1/attachments?key=k`, { headers: { authorization: 'Bearer sesame' } });
    expect(authorized.status).toBe(200);
    await authorized.body?.cancel();
  });

  it('answers HEAD with the download headers and no body, and a wrong method with 405 and Allow', async () => {
    const { store } = newStore();
    const app = new Hono();
    app.route('/v1', attacheRoutes({ store }));
    const { origin } = await start(app);
    const uploaded = await uploadDocument(`${origin}/v1`, 'hello.txt', 'hello, hono', { headers: { 'content-type': 'text/plain' } });
    const { attachment } = (await uploaded.json()) as { attachment: { id: string } };

    const head = await fetch(`${origin}/v1/attachment?id=${attachment.id}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('11');
    expect(head.headers.get('content-type')).toBe('text/plain');
    expect(head.headers.get('x-attachment-name')).toBe('hello.txt');
    expect(await head.text()).toBe('');

    const wrongMethod = await fetch(`${origin}/v1/healthz`, { method: 'PUT' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, HEAD');
    await wrongMethod.body?.cancel();
  });
});

describe('Hono middleware in front of attacheRoutes', () => {
  async function startWithMiddleware(maxSize: number): Promise<{ origin: string; logLines: string[]; fixture: Fixture }> {
    const fixture = newStore();
    const logLines: string[] = [];
    const app = new Hono();
    app.use('*', logger((line) => logLines.push(line)));
    app.use('*', cors({ origin: 'https://app.example', exposeHeaders: ['X-Attachment-ID'] }));
    app.use('/v1/*', bodyLimit({ maxSize }));
    app.route('/v1', attacheRoutes({ store: fixture.store }));
    return { origin: (await start(app)).origin, logLines, fixture };
  }

  it('keeps working with logger, cors and bodyLimit mounted before it', async () => {
    const { origin, logLines } = await startWithMiddleware(1024 * 1024);
    const uploaded = await uploadDocument(`${origin}/v1`, 'note.txt', 'within the limit', {
      headers: { origin: 'https://app.example', 'content-type': 'text/plain' },
    });
    expect(uploaded.status).toBe(200);
    expect(uploaded.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(uploaded.headers.get('access-control-expose-headers')).toBe('X-Attachment-ID');
    const { attachment } = (await uploaded.json()) as { attachment: { id: string; size: number } };
    expect(attachment.size).toBe(16);

    const downloaded = await fetch(`${origin}/v1/attachment?id=${attachment.id}`);
    expect(await downloaded.text()).toBe('within the limit');
    expect(logLines.some((line) => line.includes('POST /v1/attachments'))).toBe(true);
    expect(logLines.some((line) => line.includes(`GET /v1/attachment?id=${attachment.id}`) || line.includes('GET /v1/attachment'))).toBe(true);
  });

  it('lets cors answer preflight requests before attache sees them', async () => {
    const { origin } = await startWithMiddleware(1024);
    const preflight = await fetch(`${origin}/v1/attachments`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('lets bodyLimit refuse a declared Content-Length over its limit, and nothing is stored', async () => {
    const { origin, fixture } = await startWithMiddleware(1024);
    const refused = await uploadDocument(`${origin}/v1`, 'big.bin', new Uint8Array(4096));
    expect(refused.status).toBe(413);
    await refused.body?.cancel();
    expect(await countBlobs(fixture.blobs)).toBe(0);
  });

  it('accepts the Request bodyLimit substitutes for a chunked upload under its limit', async () => {
    const { origin } = await startWithMiddleware(1024 * 1024);
    const uploaded = await uploadDocument(`${origin}/v1`, 'chunked.bin', patternStream(100_000, 10_000));
    expect(uploaded.status).toBe(200);
    expect(((await uploaded.json()) as { attachment: { size: number } }).attachment.size).toBe(100_000);
  });
});

describe('streaming through Hono', () => {
  const SIZE = 24 * 1024 * 1024 + 123;

  it('streams a chunked upload under a lease and streams it back, whole and as a range', async () => {
    const { store } = newStore();
    const parent = new Hono();
    parent.route('/v1', attacheRoutes({ store }));
    const app = new Hono();
    app.route('/api', parent);
    const base = `${(await start(app)).origin}/api/v1`;

    const acquired = await fetch(`${base}/acquire`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'videos/1', ttl_seconds: 60, owner: 'hono-test' }),
    });
    expect(acquired.status).toBe(200);
    const lease = (await acquired.json()) as { lease_id: string; txn_id: string; fencing_token: number };
    const leaseHeaders = {
      'x-lease-id': lease.lease_id,
      'x-txn-id': lease.txn_id,
      'x-fencing-token': String(lease.fencing_token),
    };
    const expected = await sha256Hex(patternStream(SIZE));

    const uploaded = await postStreaming(`${base}/attachments?key=videos/1&name=clip.bin&content_type=video/mp4`, patternStream(SIZE), {
      headers: leaseHeaders,
    });
    expect(uploaded.status).toBe(200);
    const { attachment } = (await uploaded.json()) as { attachment: { size: number; sha256: string } };
    expect(attachment).toMatchObject({ size: SIZE, sha256: expected.sha256 });

    const released = await fetch(`${base}/release`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fencing-token': String(lease.fencing_token) },
      body: JSON.stringify({ key: 'videos/1', lease_id: lease.lease_id, txn_id: lease.txn_id }),
    });
    expect(await released.json()).toEqual({ released: true });

    const downloaded = await fetch(`${base}/attachment?key=videos/1&name=clip.bin`);
    expect(downloaded.status).toBe(200);
    expect(downloaded.headers.get('content-length')).toBe(String(SIZE));
    expect(downloaded.headers.get('content-type')).toBe('video/mp4');
    expect(await sha256Hex(downloaded.body!)).toEqual(expected);

    const ranged = await fetch(`${base}/attachment?key=videos/1&name=clip.bin`, { headers: { range: 'bytes=1000-1009' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 1000-1009/${SIZE}`);
    expect([...new Uint8Array(await ranged.arrayBuffer())]).toEqual(Array.from({ length: 10 }, (_, index) => (1000 + index) % 251));
  });

  it('passes the request signal through: a client abort mid-upload reaches core and nothing is kept', async () => {
    const { store, blobs } = newStore();
    const signalsSeenByCore: AbortSignal[] = [];
    let coreSawTheRequest: () => void = () => {};
    const requestReachedCore = new Promise<void>((resolve) => (coreSawTheRequest = resolve));
    const app = new Hono();
    app.route(
      '/v1',
      attacheRoutes({
        store,
        authorize: ({ request }) => {
          signalsSeenByCore.push(request.signal);
          coreSawTheRequest();
          return true;
        },
      }),
    );
    const { origin } = await start(app);

    const client = new AbortController();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent >= 2 * 1024 * 1024) {
          // Abort only once core is reading this upload.
          await requestReachedCore;
          client.abort();
          return;
        }
        sent += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    await expect(uploadDocument(`${origin}/v1`, 'never.bin', body, { signal: client.signal })).rejects.toThrow();

    expect(signalsSeenByCore).toHaveLength(1);
    await expect.poll(() => signalsSeenByCore[0]!.aborted, { timeout: 5_000 }).toBe(true);
    expect(await countBlobs(blobs)).toBe(0);
    expect(sent).toBeGreaterThanOrEqual(2 * 1024 * 1024);
  });
});
