// The client in a real browser (Debian's Chromium through playwright-core),
// bundled from its sources with esbuild as an app's bundler would, against a
// real server over loopback. Browsers cannot stream request bodies over
// HTTP/1.1, so uploads are collected and sent with XMLHttpRequest: progress
// must count bytes sent, not bytes collected. A TCP valve between browser
// and server stops taking request bytes mid-upload to tell the two apart.
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, connect, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createAttachmentStore, createHandler, memoryBlobs, memoryMetadata, type AttachmentStore, type BlobStore } from '@attache/core';
import { toNodeListener } from '@attache/node';
import { chromiumLaunchOptions, describeWithChromium } from '@attache/testing';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, afterEach, expect, it } from 'vitest';

const MiB = 1024 * 1024;
const UPLOAD_BYTES = 32 * MiB;
const ENTRY = fileURLToPath(new URL('../src/index.ts', import.meta.url));

/** Byte i of the upload; the page and this file build the same bytes. */
const patternByte = (i: number) => (i * 7919 + (i >> 12)) & 0xff;

interface Valve {
  origin: string;
  /** Stop taking bytes from the browser once this many more have passed. */
  holdAfter(bytes: number): void;
  /** Bytes taken from the browser since the last `holdAfter`. */
  passed(): number;
  /** Whether the valve has stopped taking bytes. */
  holding(): boolean;
  open(): void;
  close(): Promise<void>;
}

/** A TCP proxy to `port` that can stop reading from the browser, as a slow uplink does. */
async function startValve(port: number): Promise<Valve> {
  const sockets = new Set<Socket>();
  let limit = Infinity;
  let passed = 0;
  let paused: Socket[] = [];
  const server = createTcpServer((browserSide) => {
    const serverSide = connect(port, '127.0.0.1');
    sockets.add(browserSide).add(serverSide);
    browserSide.on('data', (chunk) => {
      passed += chunk.byteLength;
      serverSide.write(chunk);
      if (passed >= limit) {
        browserSide.pause();
        paused.push(browserSide);
      }
    });
    serverSide.pipe(browserSide);
    const end = () => {
      browserSide.destroy();
      serverSide.destroy();
    };
    browserSide.on('close', end).on('error', end);
    serverSide.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holdAfter(bytes) {
      passed = 0;
      limit = bytes;
    },
    passed: () => passed,
    holding: () => paused.length > 0,
    open() {
      limit = Infinity;
      for (const socket of paused) socket.resume();
      paused = [];
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describeWithChromium('@attache/client in Chromium', () => {
  let store: AttachmentStore;
  let blobs: BlobStore;
  let server: Server;
  const blobCount = async () => {
    await store.settled();
    let count = 0;
    for await (const _ of blobs.list('')) count += 1;
    return count;
  };
  let valve: Valve;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    // The client's sources bundled for the browser, @attache/core with them.
    const bundle = await build({
      entryPoints: [ENTRY],
      bundle: true,
      format: 'iife',
      globalName: 'AttacheClient',
      platform: 'browser',
      conditions: ['source'],
      target: 'chrome120',
      write: false,
      logLevel: 'silent',
    });
    const script = bundle.outputFiles[0]!.text;
    blobs = memoryBlobs();
    store = createAttachmentStore({ metadata: memoryMetadata(), blobs, sweepIntervalSeconds: 0 });
    const api = toNodeListener(createHandler({ store, basePath: '/v1' }));
    server = createHttpServer((request, response) => {
      if (request.url === '/client.js') {
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      } else if (request.url === '/') {
        response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>client</title><script src="/client.js"></script>');
      } else {
        api(request, response);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    valve = await startValve((server.address() as AddressInfo).port);
    browser = await chromium.launch(chromiumLaunchOptions());
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await valve?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await store?.close();
  });

  beforeEach(async () => {
    page = await browser.newPage();
    await page.goto(`${valve.origin}/`);
    await page.waitForFunction(() => 'AttacheClient' in window);
  });

  afterEach(async () => {
    valve.open();
    await page.close();
  });

  it('reports the bytes actually sent: held mid-upload, progress stops short of the total, then reaches it', { timeout: 120_000 }, async () => {
    valve.holdAfter(MiB);
    await page.evaluate(
      ({ size }) => {
        const bytes = new Uint8Array(size);
        for (let i = 0; i < size; i++) bytes[i] = (i * 7919 + (i >> 12)) & 0xff;
        const { createClient } = (window as unknown as { AttacheClient: typeof import('../src/index.js') }).AttacheClient;
        const client = createClient({ baseUrl: `${location.origin}/v1` });
        const state = window as unknown as { progress: number[]; upload: Promise<unknown> };
        state.progress = [];
        state.upload = client
          .upload(new Blob([bytes], { type: 'application/octet-stream' }), {
            name: 'big.bin',
            onProgress: ({ sentBytes, totalBytes }) => {
              if (totalBytes !== size) throw new Error(`total ${totalBytes}`);
              state.progress.push(sentBytes);
            },
          })
          .then(
            (attachment) => ({ ok: true, attachment }),
            (error: { code?: string; message?: string }) => ({ ok: false, code: error.code, message: error.message }),
          );
      },
      { size: UPLOAD_BYTES },
    );
    await expect.poll(() => valve.holding(), { timeout: 30_000 }).toBe(true);
    // The browser fills the socket buffers it can, then can send no more.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const whileHeld = await page.evaluate(() => Math.max(...(window as unknown as { progress: number[] }).progress));
    expect(whileHeld).toBeLessThan(UPLOAD_BYTES * 0.75);

    valve.open();
    const outcome = (await page.evaluate(() => (window as unknown as { upload: Promise<unknown> }).upload)) as {
      ok: boolean;
      attachment: { id: string; size: number };
    };
    expect(outcome).toMatchObject({ ok: true, attachment: { size: UPLOAD_BYTES } });
    const progress = await page.evaluate(() => (window as unknown as { progress: number[] }).progress);
    expect(progress.at(-1)).toBe(UPLOAD_BYTES);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.filter((sent) => sent > whileHeld && sent < UPLOAD_BYTES).length).toBeGreaterThan(0);

    const expected = createHash('sha256');
    const chunk = new Uint8Array(MiB);
    for (let offset = 0; offset < UPLOAD_BYTES; offset += MiB) {
      for (let i = 0; i < MiB; i++) chunk[i] = patternByte(offset + i);
      expected.update(chunk);
    }
    const { attachment } = await store.openAttachment({ id: outcome.attachment.id });
    expect(attachment.sha256).toBe(expected.digest('hex'));
  });

  it('turns an error answer sent through XMLHttpRequest into the same AttacheError (413 attachment_too_large)', async () => {
    const outcome = await page.evaluate(async () => {
      const { createClient } = (window as unknown as { AttacheClient: typeof import('../src/index.js') }).AttacheClient;
      const client = createClient({ baseUrl: `${location.origin}/v1` });
      const lease = await client.acquire({ key: 'browser', ttlSeconds: 30, owner: 'chromium' });
      const sent: number[] = [];
      try {
        await lease.attach({ name: 'big.bin', body: new Blob([new Uint8Array(4096)]), maxBytes: 100, onProgress: (p) => sent.push(p.sentBytes) });
        return { ok: true };
      } catch (error) {
        const failure = error as { name: string; code: string; status: number };
        return { ok: false, name: failure.name, code: failure.code, status: failure.status, isAttacheError: AttacheClientIsError(error) };
      } finally {
        await lease.release({ rollback: true });
      }
      function AttacheClientIsError(error: unknown): boolean {
        return (window as unknown as { AttacheClient: typeof import('../src/index.js') }).AttacheClient.isAttacheError(error, 'attachment_too_large');
      }
    });
    expect(outcome).toEqual({ ok: false, name: 'AttacheError', code: 'attachment_too_large', status: 413, isAttacheError: true });
  });

  it('aborts an upload from its signal: the promise rejects and the server keeps nothing', { timeout: 60_000 }, async () => {
    const blobsBefore = await blobCount();
    valve.holdAfter(MiB);
    await page.evaluate(() => {
      const { createClient } = (window as unknown as { AttacheClient: typeof import('../src/index.js') }).AttacheClient;
      const client = createClient({ baseUrl: `${location.origin}/v1` });
      const state = window as unknown as { controller: AbortController; upload: Promise<unknown> };
      state.controller = new AbortController();
      state.upload = client
        .upload(new Blob([new Uint8Array(16 * 1024 * 1024)]), { name: 'gone.bin', signal: state.controller.signal, onProgress: () => {} })
        .then(
          () => 'resolved',
          (error: Error) => error.name,
        );
    });
    await expect.poll(() => valve.holding(), { timeout: 30_000 }).toBe(true);
    expect(await page.evaluate(() => {
      const state = window as unknown as { controller: AbortController; upload: Promise<unknown> };
      state.controller.abort();
      return state.upload;
    })).toBe('AbortError');
    valve.open();
    // The server sees the connection close mid-body and keeps nothing of it.
    await expect.poll(blobCount, { timeout: 10_000 }).toBe(blobsBefore);
  });
});
