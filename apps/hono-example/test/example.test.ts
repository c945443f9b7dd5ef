// The Hono example over real HTTP on 127.0.0.1: in-process through
// `start()`, and the built `dist/main.js` as a child process.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AVATAR_MAX_BYTES, start, type AvatarJson, type RunningExample } from '../src/app.js';
import {
  acquire,
  assertBuilt,
  createTempDir,
  downloadById,
  downloadPublic,
  expectBodyBytes,
  release,
  spawnBuiltServer,
  uploadAvatar,
  uploadRaw,
  type ServerProcess,
} from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
/** What hono's logger() printed in the current test. */
let logLines: string[] = [];
afterEach(async () => {
  logLines = [];
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startInProcess(): Promise<RunningExample> {
  const dataDir = await createTempDir();
  cleanups.push(dataDir.remove);
  const running = await start({ dataDir: dataDir.path, port: 0, log: (line) => logLines.push(line) });
  cleanups.push(() => running.close());
  return running;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('hono-example, in process', () => {
  it('runs a lease lifecycle under /v1: acquire, raw upload, release, public download', async () => {
    const { url } = await startInProcess();
    const api = `${url}/v1`;
    const bytes = new Uint8Array(randomBytes(256 * 1024));

    const lease = await acquire(api, 'orders/1');
    const uploaded = await uploadRaw(api, lease, 'scan.bin', bytes);
    expect(uploaded.status).toBe(200);
    expect(((await uploaded.json()) as { attachment: { size: number } }).attachment.size).toBe(bytes.length);

    // Staged: nobody else sees it before the release commits it.
    expect((await downloadPublic(api, 'orders/1', 'scan.bin')).status).toBe(404);
    const released = await release(api, lease);
    expect(released.status).toBe(200);
    expect(await released.json()).toEqual({ released: true });

    const download = await downloadPublic(api, 'orders/1', 'scan.bin');
    expect(download.status).toBe(200);
    await expectBodyBytes(download, bytes);
  });

  it("logs every request through hono's logger()", async () => {
    const { url } = await startInProcess();
    const response = await fetch(`${url}/v1/healthz`);
    expect(response.status).toBe(200);
    expect(logLines).toContain('<-- GET /v1/healthz');
    // The status may be colored (ANSI escapes) when the terminal supports it.
    expect(logLines.some((line) => line.startsWith('--> GET /v1/healthz ') && line.includes('200'))).toBe(true);
  });

  it('stores POST /avatar as a document that /v1/attachment?id= serves', async () => {
    const { url } = await startInProcess();
    const bytes = new Uint8Array(randomBytes(100_000));

    const response = await uploadAvatar(url, bytes);
    expect(response.status).toBe(201);
    const avatar = (await response.json()) as AvatarJson;
    expect(avatar).toEqual({ id: expect.any(String), ref: `attachment://${avatar.id}`, size: bytes.length, sha256: sha256(bytes) });

    const download = await downloadById(`${url}/v1`, avatar.id);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('image/png');
    await expectBodyBytes(download, bytes);
  });

  it('refuses an avatar over 5 MiB with 413 JSON', async () => {
    const { url } = await startInProcess();
    const response = await uploadAvatar(url, new Uint8Array(AVATAR_MAX_BYTES + 1));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'attachment_too_large' });
  });
});

describe('hono-example, built (node dist/main.js)', () => {
  beforeAll(() => {
    assertBuilt();
  });

  it('listens on PORT=0, serves /v1/healthz, and exits 0 on SIGTERM', async () => {
    const dataDir = await createTempDir();
    cleanups.push(dataDir.remove);
    let server: ServerProcess | undefined;
    cleanups.push(async () => {
      if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    });
    server = await spawnBuiltServer({ PORT: '0', ATTACHE_DATA_DIR: dataDir.path });

    const health = await fetch(`${server.url}/v1/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    expect(existsSync(join(dataDir.path, 'attache.db'))).toBe(true);

    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});
