// `attache serve` end to end: the built bin in a child process, real HTTP.
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  acquire,
  assertBuilt,
  download,
  killLeftovers,
  leaseHeaders,
  release,
  runCli,
  startServer,
  stopServer,
  upload,
  waitFor,
  withTempDir,
} from './process-helpers.js';

const cleanups: Array<() => Promise<void>> = [];

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function tempDir(): Promise<string> {
  const dir = await withTempDir();
  cleanups.push(dir.remove);
  return dir.path;
}

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  killLeftovers();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('attache (command line)', () => {
  it('prints the package version for --version', async () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const run = runCli(['--version']);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.output.stdout).toBe(`${manifest.version}\n`);
  });

  it('prints usage for --help and serve --help and exits 0', async () => {
    const main = runCli(['--help']);
    const serve = runCli(['serve', '--help']);
    expect(await main.exited).toEqual({ code: 0, signal: null });
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    expect(main.output.stdout).toContain('Usage: attache <command>');
    expect(serve.output.stdout).toContain('Usage: attache serve');
  });

  it('prints usage and exits 2 for an unknown command or flag', async () => {
    const command = runCli(['frobnicate']);
    const flag = runCli(['serve', '--frobnicate']);
    expect(await command.exited).toEqual({ code: 2, signal: null });
    expect(await flag.exited).toEqual({ code: 2, signal: null });
    expect(command.output.stderr).toContain('unknown command "frobnicate"');
    expect(command.output.stderr).toContain('Usage: attache <command>');
    expect(flag.output.stderr).toContain('--frobnicate');
    expect(flag.output.stderr).toContain('Usage: attache serve');
  });

  it('exits 2 without listening when ATTACHE_MASTER_KEY is not 32 bytes of base64', async () => {
    const run = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], { ATTACHE_MASTER_KEY: 'a'.repeat(64) });
    expect(await run.exited).toEqual({ code: 2, signal: null });
    expect(run.output.stderr).toContain('ATTACHE_MASTER_KEY must be 32 bytes encoded in base64');
    expect(run.output.stderr).not.toContain('a'.repeat(64));
    expect(run.output.stdout).toBe('');
  });

  it('exits 2 for a database URL that is not PostgreSQL and for an unknown ATTACHE_S3_* variable', async () => {
    const database = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], { ATTACHE_DATABASE_URL: 'mysql://db/attache' });
    const s3 = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], { ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_BUKET: 'b' });
    expect(await database.exited).toEqual({ code: 2, signal: null });
    expect(await s3.exited).toEqual({ code: 2, signal: null });
    expect(database.output.stderr).toContain('postgres:// or postgresql://');
    expect(s3.output.stderr).toContain('unknown setting ATTACHE_S3_BUKET');
    expect(database.output.stdout + s3.output.stdout).toBe('');
  });

  it('exits 1 without listening when PostgreSQL cannot be reached, naming where and never the password', async () => {
    const port = await closedPort();
    const run = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], {
      ATTACHE_DATABASE_URL: `postgres://attache:hunter2@127.0.0.1:${port}/attache`,
    });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.output.stderr).toContain(`metadata in PostgreSQL 127.0.0.1:${port}/attache`);
    expect(run.output.stderr).not.toContain('hunter2');
    expect(run.output.stdout).toBe('');
  });

  it('exits 1 without listening when the S3 endpoint cannot be reached', async () => {
    const port = await closedPort();
    const run = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], {
      ATTACHE_S3_BUCKET: 'attachments',
      ATTACHE_S3_ENDPOINT: `http://127.0.0.1:${port}`,
      ATTACHE_S3_REGION: 'us-east-1',
      ATTACHE_S3_FORCE_PATH_STYLE: 'true',
      ATTACHE_S3_ACCESS_KEY_ID: 'AKID',
      ATTACHE_S3_SECRET_ACCESS_KEY: 'SECRET',
    });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.output.stderr).toContain('S3 bucket "attachments" is not usable');
    expect(run.output.stdout).toBe('');
  });
});

describe('attache serve', () => {
  it('answers GET /v1/healthz with {ok: true}', async () => {
    const server = await startServer(await tempDir());
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(`${server.url}/v1/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
  });

  it('runs a lease lifecycle: acquire, upload, release, then anyone downloads the bytes', async () => {
    const server = await startServer(await tempDir());
    const lease = await acquire(server.url, 'orders/1');

    const uploaded = await upload(server.url, lease, 'a.txt', new TextEncoder().encode('hello attache'));
    expect(uploaded.status).toBe(200);
    const { attachment } = (await uploaded.json()) as { attachment: { name: string; size: number } };
    expect(attachment).toMatchObject({ name: 'a.txt', size: 13 });

    // Staged: invisible to readers without the lease until release commits it.
    expect((await download(server.url, 'orders/1', 'a.txt')).status).toBe(404);

    const released = await release(server.url, lease);
    expect(released.status).toBe(200);
    expect(await released.json()).toEqual({ released: true });

    const downloaded = await download(server.url, 'orders/1', 'a.txt');
    expect(downloaded.status).toBe(200);
    expect(await downloaded.text()).toBe('hello attache');
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
  });

  it('requires the bearer token when ATTACHE_TOKEN is set', async () => {
    const server = await startServer(await tempDir(), { ATTACHE_TOKEN: 'sesame' });
    const url = `${server.url}/v1/attachments?key=orders/1`;

    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: 'unauthorized' });
    const wrong = await fetch(url, { headers: { authorization: 'Bearer open' } });
    expect(wrong.status).toBe(401);
    await wrong.body?.cancel();

    const authorized = await fetch(url, { headers: { authorization: 'Bearer sesame' } });
    expect(authorized.status).toBe(200);
    expect(await authorized.json()).toEqual({ namespace: 'default', key: 'orders/1', attachments: [] });
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
  });

  it('enforces ATTACHE_MAX_BYTES with 413', async () => {
    const server = await startServer(await tempDir(), { ATTACHE_MAX_BYTES: '10' });
    const lease = await acquire(server.url, 'orders/1');
    const tooLarge = await upload(server.url, lease, 'big.txt', new Uint8Array(11));
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ error: 'attachment_too_large' });
    const fits = await upload(server.url, lease, 'small.txt', new Uint8Array(10));
    expect(fits.status).toBe(200);
    await fits.body?.cancel();
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
  });

  it('keeps committed data across a restart on the same data directory', async () => {
    const dataDir = await tempDir();
    const first = await startServer(dataDir);
    const lease = await acquire(first.url, 'orders/7');
    const bytes = new Uint8Array(200_000).map((_, index) => (index * 31) % 251);
    expect((await upload(first.url, lease, 'scan.bin', bytes)).status).toBe(200);
    expect((await release(first.url, lease)).status).toBe(200);
    expect(await stopServer(first)).toEqual({ code: 0, signal: null });

    const second = await startServer(dataDir);
    const downloaded = await download(second.url, 'orders/7', 'scan.bin');
    expect(downloaded.status).toBe(200);
    expect(new Uint8Array(await downloaded.arrayBuffer())).toEqual(bytes);
    expect(await stopServer(second)).toEqual({ code: 0, signal: null });
  });

  it('exits 1 with a clear message when the port is taken', async () => {
    const server = await startServer(await tempDir());
    const port = new URL(server.url).port;
    const clash = runCli(['serve', '--port', port, '--data-dir', await tempDir()]);
    expect(await clash.exited).toEqual({ code: 1, signal: null });
    expect(clash.output.stderr).toContain(`cannot start on 127.0.0.1:${port}`);
    expect(clash.output.stderr).toContain('EADDRINUSE');
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
  });
});

describe('attache serve shutdown', () => {
  it('exits 0 promptly on SIGTERM when idle, having printed exactly one line', async () => {
    const server = await startServer(await tempDir());
    // Leaves an idle keep-alive connection, which must not hold shutdown up.
    expect((await fetch(`${server.url}/v1/healthz`)).status).toBe(200);
    const started = Date.now();
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(server.output.stdout).toBe(`attache listening on ${server.url}\n`);
  });

  it('exits 0 on SIGINT too', async () => {
    const server = await startServer(await tempDir());
    server.child.kill('SIGINT');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });

  it('lets an upload that is streaming at SIGTERM finish with 200, refuses new connections, then exits 0', async () => {
    const dataDir = await tempDir();
    const server = await startServer(dataDir);
    const lease = await acquire(server.url, 'orders/2');
    const half = 64 * 1024;
    const body = new Uint8Array(2 * half).fill(7);

    const target = new URL(`${server.url}/v1/attachments?key=orders/2&name=slow.bin`);
    const outgoing = request(target, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(body.byteLength),
        ...leaseHeaders(lease),
      },
    });
    const responded = new Promise<IncomingMessage>((resolve, reject) => {
      outgoing.on('response', resolve);
      outgoing.on('error', reject);
    });
    // Awaited below; this keeps an early failure from also surfacing as unhandled.
    responded.catch(() => undefined);
    outgoing.write(body.subarray(0, half));
    await new Promise((resolve) => setTimeout(resolve, 300));

    server.child.kill('SIGTERM');
    await waitFor(() => server.output.stderr.includes('SIGTERM received'), 'the server to handle SIGTERM');
    await expect(fetch(`${server.url}/v1/healthz`)).rejects.toThrow();
    expect(server.child.exitCode).toBeNull();

    await new Promise((resolve) => setTimeout(resolve, 300));
    outgoing.end(body.subarray(half));
    const response = await responded;
    let text = '';
    for await (const chunk of response) text += String(chunk);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ attachment: { name: 'slow.bin', size: body.byteLength } });
    expect(await server.exited).toEqual({ code: 0, signal: null });

    // The upload was staged, never released: after a restart it is not visible.
    const restarted = await startServer(dataDir);
    const listed = await fetch(`${restarted.url}/v1/attachments?key=orders/2&public=true`);
    expect(await listed.json()).toEqual({ namespace: 'default', key: 'orders/2', attachments: [] });
    expect(await stopServer(restarted)).toEqual({ code: 0, signal: null });
  });
});

describe('attache serve with ATTACHE_MASTER_KEY', () => {
  const MARKER = 'SERVE-PLAINTEXT-MARKER-93d1f';
  const masterKey = Buffer.alloc(32, 0x5a).toString('base64');

  /** Every file under `dir` whose bytes contain `text`. */
  function filesContaining(dir: string, text: string): string[] {
    const needle = Buffer.from(text);
    return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name))
      .filter((path) => readFileSync(path).includes(needle));
  }

  async function commitText(url: string, key: string, name: string, text: string): Promise<void> {
    const lease = await acquire(url, key);
    expect((await upload(url, lease, name, new TextEncoder().encode(text))).status).toBe(200);
    expect((await release(url, lease)).status).toBe(200);
  }

  it('writes no plaintext under the data directory (and the same upload without a key does)', async () => {
    const body = `${MARKER} `.repeat(20_000);
    const encryptedDir = await tempDir();
    const server = await startServer(encryptedDir, { ATTACHE_MASTER_KEY: masterKey });
    await commitText(server.url, 'secret/1', 'big.txt', body);
    await commitText(server.url, 'secret/2', 'small.txt', MARKER);
    const downloaded = await download(server.url, 'secret/1', 'big.txt');
    expect(downloaded.headers.get('content-length')).toBe(String(body.length));
    expect(await downloaded.text()).toBe(body);
    expect(await (await download(server.url, 'secret/2', 'small.txt')).text()).toBe(MARKER);
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
    expect(filesContaining(encryptedDir, MARKER)).toEqual([]);

    const plainDir = await tempDir();
    const plain = await startServer(plainDir);
    await commitText(plain.url, 'secret/2', 'small.txt', MARKER);
    expect(await stopServer(plain)).toEqual({ code: 0, signal: null });
    expect(filesContaining(plainDir, MARKER)).toHaveLength(1);
  });

  it('reads what was stored before the key was set, and refuses encrypted attachments with 500 key_unavailable once it is removed', async () => {
    const dir = await tempDir();
    const before = await startServer(dir);
    await commitText(before.url, 'k', 'old.txt', 'stored in plaintext');
    expect(await stopServer(before)).toEqual({ code: 0, signal: null });

    const encrypted = await startServer(dir, { ATTACHE_MASTER_KEY: masterKey });
    expect(await (await download(encrypted.url, 'k', 'old.txt')).text()).toBe('stored in plaintext');
    await commitText(encrypted.url, 'k', 'new.txt', 'stored encrypted');
    expect(await (await download(encrypted.url, 'k', 'new.txt')).text()).toBe('stored encrypted');
    expect(await stopServer(encrypted)).toEqual({ code: 0, signal: null });

    const after = await startServer(dir);
    expect(await (await download(after.url, 'k', 'old.txt')).text()).toBe('stored in plaintext');
    const refused = await download(after.url, 'k', 'new.txt');
    expect(refused.status).toBe(500);
    expect(await refused.json()).toMatchObject({ error: 'key_unavailable' });
    expect(await stopServer(after)).toEqual({ code: 0, signal: null });
  });
});
