// The handler's `cors` option in a real browser (Debian's Chromium through
// playwright-core): a page on one origin drives tus-js-client (its browser
// build) and fetch against the API on another origin, as the docs show: a
// lease acquired, a file uploaded in chunks into its transaction with a
// bearer token, the lease released. Chromium enforces CORS itself, so this
// passes only if the preflights and the exposed headers are right; the same
// page on an origin the server does not list fails.
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createAttachmentStore, memoryBlobs, memoryMetadata, type AttachmentStore } from '@attache/core';
import { createHandler } from '@attache/core/http';
import { toNodeListener } from '@attache/node';
import { chromiumLaunchOptions, describeWithChromium, digestsOf, listenOnLoopback, patternBytes } from '@attache/testing';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

const TOKEN = 'browser-cors-token';
const SIZE = 700_000;
const CHUNK = 256 * 1024;
const TUS_BROWSER_BUILD = readFileSync(createRequire(import.meta.url).resolve('tus-js-client/dist/tus.min.js'), 'utf8');

/** The page: tus-js-client's browser build and nothing else. */
const pages: RequestListener = (req, res) => {
  if (req.url === '/tus.min.js') res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(TUS_BROWSER_BUILD);
  else res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><script src="/tus.min.js"></script>');
};

async function listen(listener: RequestListener): Promise<{ server: Server; origin: string }> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

interface PageOutcome {
  ok: boolean;
  attachmentId?: string;
  released?: number;
  error?: string;
}

/** Runs in the page: acquire, tus upload in chunks with the lease headers, release — all cross-origin. */
async function leasedUploadInPage({ api, key, token, size, chunkSize }: { api: string; key: string; token: string; size: number; chunkSize: number }): Promise<PageOutcome> {
  // The page's global, from tus.min.js.
  const { Upload } = (window as unknown as { tus: typeof import('tus-js-client') }).tus;
  const authorization = { Authorization: `Bearer ${token}` };
  try {
    const acquired = await fetch(`${api}/acquire`, {
      method: 'POST',
      headers: { ...authorization, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key, owner: 'browser', ttl_seconds: 300 }),
    });
    const lease = (await acquired.json()) as { lease_id: string; txn_id: string; fencing_token: number };
    const leaseHeaders = { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id, 'X-Fencing-Token': String(lease.fencing_token) };
    // The same bytes as patternBytes(size, 7) in Node.
    const bytes = new Uint8Array(size);
    let state = 7;
    for (let index = 0; index < size; index++) {
      state = (state * 1103515245 + 12345) >>> 0;
      bytes[index] = state >>> 24;
    }
    const attachmentId = await new Promise<string>((resolve, reject) => {
      new Upload(new Blob([bytes]), {
        endpoint: `${api}/uploads?key=${encodeURIComponent(key)}`,
        chunkSize,
        retryDelays: null,
        metadata: { filename: 'invoice.pdf', filetype: 'application/pdf' },
        headers: { ...authorization, ...leaseHeaders },
        onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader('X-Attachment-ID') ?? ''),
        onError: reject,
      }).start();
    });
    const released = await fetch(`${api}/release`, {
      method: 'POST',
      headers: { ...authorization, ...leaseHeaders, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key, lease_id: lease.lease_id, txn_id: lease.txn_id }),
    });
    return { ok: true, attachmentId, released: released.status };
  } catch (error) {
    return { ok: false, error: String(error) };
  }
}

describeWithChromium('tus-js-client and fetch in Chromium, from another origin (the cors option)', () => {
  let browser: Browser;
  let store: AttachmentStore;
  let api: { baseUrl: string; close(): Promise<void> };
  let allowedPage: { server: Server; origin: string };
  let otherPage: { server: Server; origin: string };

  beforeAll(async () => {
    allowedPage = await listen(pages);
    otherPage = await listen(pages);
    store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs() });
    api = await listenOnLoopback(toNodeListener(createHandler({ store, token: TOKEN, cors: { origins: [allowedPage.origin] } })));
    browser = await chromium.launch(chromiumLaunchOptions());
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await store?.close();
    for (const page of [allowedPage, otherPage]) await new Promise((resolve) => page?.server.close(resolve));
  });

  it('acquires a lease, uploads in chunks into its transaction with a bearer token, and releases it, from an allowed origin', async () => {
    const page = await browser.newPage();
    await page.goto(`${allowedPage.origin}/`);
    const outcome = await page.evaluate(leasedUploadInPage, { api: api.baseUrl, key: 'orders/1', token: TOKEN, size: SIZE, chunkSize: CHUNK });
    expect(outcome).toMatchObject({ ok: true, released: 200 });
    expect(await store.listAttachments({ key: 'orders/1' })).toMatchObject([
      { id: outcome.attachmentId, name: 'invoice.pdf', size: SIZE, ...digestsOf(patternBytes(SIZE, 7)) },
    ]);
    await page.close();
  });

  it('fails in the browser from an origin the server does not list: nothing is acquired or uploaded', async () => {
    const page = await browser.newPage();
    await page.goto(`${otherPage.origin}/`);
    const outcome = await page.evaluate(leasedUploadInPage, { api: api.baseUrl, key: 'orders/2', token: TOKEN, size: SIZE, chunkSize: CHUNK });
    expect(outcome.ok).toBe(false);
    // The browser refused the acquire's preflight: the request never left.
    expect(outcome.error).toMatch(/Failed to fetch/);
    const lease = await store.acquire({ key: 'orders/2', owner: 'test', ttlSeconds: 5 });
    expect(await store.listAttachments({ key: 'orders/2' })).toEqual([]);
    await lease.release();
    await page.close();
  });
});
