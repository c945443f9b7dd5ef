// The contract routes served through a Nest app (Express platform) created
// with { bodyParser: false }, as the README says: leases, uploads, downloads,
// and the module's own parsers for the app's other routes. Then what happens
// with Nest's default body parser left on.
import { createHash } from 'node:crypto';
import type { AttachmentStore } from '@attache/core';
import { Body, Controller, Module, Post, type DynamicModule, type Type } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import { afterEach, describe, expect, it } from 'vitest';
import { AttacheModule } from '../src/index.js';
import { acquire, leaseHeaders, memoryStore, release, startApp, watchedMemoryBlobs, type RunningApp } from './helpers.js';

@Controller('echo')
class EchoController {
  @Post()
  echo(@Body() body: unknown): { received: unknown } {
    return { received: body };
  }
}

function appModule(attache: DynamicModule): Type<unknown> {
  @Module({ imports: [attache], controllers: [EchoController] })
  class AppModule {}
  return AppModule;
}

const running: RunningApp[] = [];
const stores: AttachmentStore[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.close()));
  await Promise.all(stores.splice(0).map((store) => store.close()));
});

async function serve(options: { path?: string; globalPrefix?: string; bodyParser?: boolean } = {}) {
  const blobs = watchedMemoryBlobs();
  const store = memoryStore(blobs);
  stores.push(store);
  const attache = AttacheModule.forRoot({ store, ...(options.path === undefined ? {} : { path: options.path }) });
  const app = await startApp(appModule(attache), { bodyParser: false, ...options });
  running.push(app);
  return { app, store, blobs };
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('AttacheModule.forRoot over HTTP (app created with bodyParser: false)', () => {
  it('runs a lease lifecycle: acquire, keepalive, upload staged, commit on release, download', async () => {
    const { app } = await serve();
    const baseUrl = `${app.origin}/v1`;
    const lease = await acquire(baseUrl, 'orders/1');

    const keepalive = await fetch(`${baseUrl}/keepalive`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...leaseHeaders(lease) },
      body: JSON.stringify({ key: 'orders/1', lease_id: lease.lease_id, txn_id: lease.txn_id, ttl_seconds: 120 }),
    });
    expect(keepalive.status).toBe(200);
    expect(await keepalive.json()).toMatchObject({ fencing_token: lease.fencing_token });

    const bytes = new Uint8Array(3 * 1024 * 1024).map((_, index) => (index * 7) % 251);
    const upload = await fetch(`${baseUrl}/attachments?key=orders/1&name=scan.bin`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', ...leaseHeaders(lease) },
      body: bytes,
    });
    expect(upload.status).toBe(200);
    const { attachment } = (await upload.json()) as { attachment: { id: string; size: number; sha256: string } };
    expect(attachment).toMatchObject({ size: bytes.length, sha256: sha256(bytes) });

    const before = await fetch(`${baseUrl}/attachments?key=orders/1`);
    expect(((await before.json()) as { attachments: unknown[] }).attachments).toEqual([]);

    expect((await release(baseUrl, lease)).status).toBe(200);
    const download = await fetch(`${baseUrl}/attachment?key=orders/1&name=scan.bin`);
    expect(download.status).toBe(200);
    expect(download.headers.get('etag')).toBe(`"${attachment.sha256}"`);
    expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(attachment.sha256);

    const byId = await fetch(`${baseUrl}/attachment?id=${attachment.id}`, { method: 'HEAD' });
    expect(byId.status).toBe(200);
    expect(byId.headers.get('content-length')).toBe(String(bytes.length));
  });

  it('keeps JSON and form bodies sent to attache byte for byte (the parsers skip its routes)', async () => {
    const { app } = await serve();
    const baseUrl = `${app.origin}/v1`;
    const lease = await acquire(baseUrl, 'raw/json');
    // Larger than body-parser's 100 kB limit, and spaced so re-serializing would change it.
    const json = new TextEncoder().encode(`{ "rows": [${Array.from({ length: 20_000 }, (_, i) => ` ${i}`).join(',')}] }`);
    const form = new TextEncoder().encode('a=1&b=2');
    for (const [name, body, type] of [
      ['data.json', json, 'application/json'],
      ['form.txt', form, 'application/x-www-form-urlencoded'],
    ] as const) {
      const upload = await fetch(`${baseUrl}/attachments?key=raw/json&name=${name}`, {
        method: 'POST',
        headers: { 'Content-Type': type, ...leaseHeaders(lease) },
        body,
      });
      expect(upload.status).toBe(200);
      expect(await upload.json()).toMatchObject({ attachment: { size: body.length, sha256: sha256(body) } });
    }
    const list = await fetch(`${baseUrl}/attachments?key=raw/json`, { headers: leaseHeaders(lease) });
    const types = ((await list.json()) as { attachments: { name: string; content_type: string }[] }).attachments;
    expect(types.map((item) => [item.name, item.content_type])).toEqual([
      ['data.json', 'application/json'],
      ['form.txt', 'application/octet-stream'],
    ]);
  });

  it('answers a malformed lease-call body with attache’s 400 invalid_body, not Nest’s error', async () => {
    const { app } = await serve();
    const response = await fetch(`${app.origin}/v1/acquire`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"key": "a", ',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_body' });
  });

  it('parses JSON and urlencoded bodies of the application’s own routes, as Nest would', async () => {
    const { app } = await serve();
    const json = await fetch(`${app.origin}/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ hello: 'nest' }),
    });
    expect(json.status).toBe(201);
    expect(await json.json()).toEqual({ received: { hello: 'nest' } });
    const form = await fetch(`${app.origin}/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'a[b]=1',
    });
    expect(await form.json()).toEqual({ received: { a: { b: '1' } } });
  });

  it('skips the parsers under a global prefix and a RouterModule path too (Nest resolves the controller’s path)', async () => {
    const { app } = await serve({ path: 'files', globalPrefix: 'api' });
    const baseUrl = `${app.origin}/api/files`;
    const lease = await acquire(baseUrl, 'prefixed/json');
    const body = '{ "spaced":  true }';
    const upload = await fetch(`${baseUrl}/attachments?key=prefixed/json&name=a.json`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...leaseHeaders(lease) },
      body,
    });
    expect(upload.status).toBe(200);
    expect(await upload.json()).toMatchObject({ attachment: { size: body.length } });
    const echo = await fetch(`${app.origin}/api/echo`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"x":1}' });
    expect(await echo.json()).toEqual({ received: { x: 1 } });
  });

  it('streams an upload into the store while the request is still arriving (Nest buffers nothing)', async () => {
    const { app, blobs } = await serve();
    const baseUrl = `${app.origin}/v1`;
    const lease = await acquire(baseUrl, 'stream/1');
    const chunk = new Uint8Array(256 * 1024).fill(1);
    let sent = 0;
    let resolveFirstBytesStored!: () => void;
    const firstBytesStored = new Promise<void>((resolve) => (resolveFirstBytesStored = resolve));
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 4) {
          // Hold the rest of the body until the store has seen the first bytes.
          await Promise.race([
            firstBytesStored,
            new Promise((_, reject) =>
              setTimeout(() => reject(new Error('no byte reached the store while the request was still arriving')), 5000),
            ),
          ]);
        }
        if (sent === 8) return controller.close();
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    const watcher = setInterval(() => {
      if (blobs.bytesPut > 0) resolveFirstBytesStored();
    }, 5);
    try {
      const response = await fetch(`${baseUrl}/attachments?key=stream/1&name=stream.bin`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream', ...leaseHeaders(lease) },
        body,
        duplex: 'half',
      } as RequestInit);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ attachment: { size: 8 * chunk.length } });
    } finally {
      clearInterval(watcher);
    }
  });

  it('streams a multipart upload (not parsed by Nest) and commits every file part', async () => {
    const { app } = await serve();
    const baseUrl = `${app.origin}/v1`;
    const lease = await acquire(baseUrl, 'forms/1');
    const form = new FormData();
    form.append('note', 'not a file');
    form.append('a', new Blob(['alpha'], { type: 'text/plain' }), 'a.txt');
    form.append('b', new Blob([new Uint8Array(200_000).fill(9)], { type: 'application/octet-stream' }), 'b.bin');
    const upload = await fetch(`${baseUrl}/attachments?key=forms/1`, { method: 'POST', headers: leaseHeaders(lease), body: form });
    expect(upload.status).toBe(200);
    const { attachments } = (await upload.json()) as { attachments: { name: string; size: number }[] };
    expect(attachments.map((item) => [item.name, item.size])).toEqual([
      ['a.txt', 5],
      ['b.bin', 200_000],
    ]);
  });

  it('answers unknown paths and wrong methods under its path with attache’s 404 and 405', async () => {
    const { app } = await serve();
    const unknown = await fetch(`${app.origin}/v1/nope`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: 'not_found' });
    const mount = await fetch(`${app.origin}/v1`);
    expect(mount.status).toBe(404);
    expect(await mount.json()).toMatchObject({ error: 'not_found' });
    const wrongMethod = await fetch(`${app.origin}/v1/acquire`, { method: 'GET' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });

  it('mounts at a custom path below the global prefix and reports it in the OpenAPI document', async () => {
    const { app } = await serve({ path: 'files', globalPrefix: 'api' });
    expect(await (await fetch(`${app.origin}/api/files/healthz`)).json()).toEqual({ ok: true });
    const openapi = (await (await fetch(`${app.origin}/api/files/openapi.json`)).json()) as { servers: { url: string }[] };
    expect(openapi.servers).toEqual([{ url: '/api/files' }]);
    const lease = await acquire(`${app.origin}/api/files`, 'prefixed');
    expect((await release(`${app.origin}/api/files`, lease)).status).toBe(200);
    expect((await fetch(`${app.origin}/v1/healthz`)).status).toBe(404);
  });

  it('follows a RouterModule path with a parameter in it', async () => {
    const store = memoryStore();
    stores.push(store);
    // RouterModule prefixes the controllers of the module it names: AttacheModule's own.
    @Module({
      imports: [
        AttacheModule.forRoot({ store, path: 'files' }),
        RouterModule.register([{ path: 'tenants/:tenant', module: AttacheModule }]),
      ],
    })
    class AppModule {}
    const app = await startApp(AppModule);
    running.push(app);
    const baseUrl = `${app.origin}/tenants/acme/files`;
    const openapi = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as { servers: { url: string }[] };
    expect(openapi.servers).toEqual([{ url: '/tenants/acme/files' }]);
    const lease = await acquire(baseUrl, 'routed');
    expect((await release(baseUrl, lease)).status).toBe(200);
  });

});

describe('AttacheModule.forRoot with Nest’s default body parser left on', () => {
  it('still runs lease calls (JSON rebuilt from req.body) and raw uploads', async () => {
    const { app } = await serve({ bodyParser: true });
    const baseUrl = `${app.origin}/v1`;
    const lease = await acquire(baseUrl, 'parsed/1');
    const upload = await fetch(`${baseUrl}/attachments?key=parsed/1&name=a.bin`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', ...leaseHeaders(lease) },
      body: new Uint8Array(10),
    });
    expect(upload.status).toBe(200);
    expect((await release(baseUrl, lease)).status).toBe(200);
  });

  it('refuses a JSON-typed upload the parser consumed with 400 invalid_body, never storing it altered', async () => {
    const { app, store } = await serve({ bodyParser: true });
    const baseUrl = `${app.origin}/v1`;
    const lease = await acquire(baseUrl, 'parsed/2');
    const upload = await fetch(`${baseUrl}/attachments?key=parsed/2&name=a.json`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...leaseHeaders(lease) },
      body: '{"a":  1}',
    });
    expect(upload.status).toBe(400);
    expect(await upload.json()).toMatchObject({ error: 'invalid_body' });
    expect((await release(baseUrl, lease)).status).toBe(200);
    expect(await store.listAttachments({ key: 'parsed/2' })).toEqual([]);
  });
});
