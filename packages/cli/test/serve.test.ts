// serve() in-process: the same server the bin runs, driven from a test.
import { request } from 'node:http';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../src/config.js';
import type { ServeConfig } from '../src/config.js';
import { serve } from '../src/serve.js';
import type { RunningServer } from '../src/serve.js';

const dirs: string[] = [];
const servers: RunningServer[] = [];

async function start(env: Record<string, string> = {}): Promise<{ server: RunningServer; config: ServeConfig }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'attache-serve-'));
  dirs.push(dataDir);
  // A nested, not yet existing directory: serve() must create it.
  const config = resolveServeConfig({ port: '0', 'data-dir': join(dataDir, 'nested', 'data') }, { env });
  const server = await serve(config);
  servers.push(server);
  return { server, config };
}

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close({ timeoutMs: 0 });
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('serve()', () => {
  it('listens on the OS-chosen port and keeps SQLite and blobs in the data directory', async () => {
    const { server, config } = await start();
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const response = await fetch(`${server.url}/v1/healthz`);
    expect(await response.json()).toEqual({ ok: true });
    expect((await stat(join(config.dataDir, 'attache.db'))).isFile()).toBe(true);
    expect((await stat(join(config.dataDir, 'blobs'))).isDirectory()).toBe(true);
  });

  it('passes ATTACHE_TOKEN to the handler', async () => {
    const { server } = await start({ ATTACHE_TOKEN: 'sesame' });
    expect((await fetch(`${server.url}/v1/attachments?key=k`)).status).toBe(401);
    const authorized = await fetch(`${server.url}/v1/attachments?key=k`, { headers: { authorization: 'Bearer sesame' } });
    expect(authorized.status).toBe(200);
    await authorized.body?.cancel();
  });

  it('passes ATTACHE_CORS_ORIGINS to the handler: a preflight from a listed origin is answered before the token is asked for', async () => {
    const { server } = await start({ ATTACHE_TOKEN: 'sesame', ATTACHE_CORS_ORIGINS: 'http://app.example.test' });
    const preflight = await fetch(`${server.url}/v1/uploads`, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,tus-resumable,upload-length' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://app.example.test');
    expect(preflight.headers.get('tus-version')).toBe('1.0.0');
    const listed = await fetch(`${server.url}/v1/attachments?key=k`, { headers: { origin: 'http://app.example.test', authorization: 'Bearer sesame' } });
    expect(listed.headers.get('access-control-allow-origin')).toBe('http://app.example.test');
    await listed.body?.cancel();
  });

  it('rejects when the port is taken, naming the cause', async () => {
    const { server } = await start();
    const clash = resolveServeConfig({ port: String(server.port), 'data-dir': join(dirs[0] ?? tmpdir(), 'other') }, { env: {} });
    await expect(serve(clash)).rejects.toThrow(/EADDRINUSE/);
  });

  it('close() is idempotent and refuses new connections afterwards', async () => {
    const { server } = await start();
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    await expect(fetch(`${server.url}/v1/healthz`)).rejects.toThrow();
  });

  it('close() cuts off a request that outlives the timeout, then resolves', async () => {
    const { server } = await start();
    const acquired = await fetch(`${server.url}/v1/acquire`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'k', ttl_seconds: 30, owner: 't' }),
    });
    const lease = (await acquired.json()) as { lease_id: string; txn_id: string; fencing_token: number };

    // An upload that announces 1 MiB and then stalls after 1 KiB.
    const stalled = request(`${server.url}/v1/attachments?key=k&name=stalled.bin`, {
      method: 'POST',
      agent: false,
      headers: {
        'content-length': String(1024 * 1024),
        'x-lease-id': lease.lease_id,
        'x-txn-id': lease.txn_id,
        'x-fencing-token': String(lease.fencing_token),
      },
    });
    const outcome = new Promise<string>((resolve) => {
      stalled.on('response', (response) => resolve(`response ${response.statusCode}`));
      stalled.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    stalled.write(new Uint8Array(1024));
    await new Promise((resolve) => setTimeout(resolve, 200));

    const started = Date.now();
    await server.close({ timeoutMs: 300 });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5_000);
    expect(await outcome).toBe('ECONNRESET');
  });
});
