// The Next.js example end to end, as `next build` + `next start` on
// 127.0.0.1 (one build, reused while fresh):
// - the page driven in real Chromium (Debian's /usr/bin/chromium through
//   playwright-core; never a downloaded browser), with screenshots of the
//   main states in test-output/ (git-ignored). Without Chromium these tests
//   are skipped, or, under CI, replaced by one failing test that says why;
// - the shared HTTP contract against the route handler, with the same SQLite
//   file and blob directory opened here beside the server.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAttachmentStore, inlineSmallBlobs } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { chromiumLaunchOptions, describeExternalHttpContract, describeWithChromium } from '@attache/testing';
import { APP_DIR, buildOnce, startNext, type RunningNext } from './next-server.js';

const SCREENSHOTS = join(APP_DIR, 'test-output', 'screenshots');
/** The server's limit in these tests: small, so that a too-large file is cheap to make. */
const MAX_BYTES = 4 * 1024 * 1024;
/** A cold `next build` takes about 40 s on a shared 2-core machine; a fresh one is reused. */
const BUILD_TIMEOUT_MS = 240_000;

// Before either block: both start the built app.
beforeAll(buildOnceAndSay, BUILD_TIMEOUT_MS);

describeWithChromium('next-example in Chromium', () => {
  let server: RunningNext;
  let browser: Browser;
  let page: Page;
  /** Console errors and uncaught exceptions of the current page. */
  let pageErrors: string[];

  beforeAll(async () => {
    server = await startNext({ ATTACHE_MAX_BYTES: String(MAX_BYTES) });
    browser = await chromium.launch(chromiumLaunchOptions());
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  beforeEach(async () => {
    page = await browser.newPage({ viewport: { width: 900, height: 760 } });
    pageErrors = [];
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(`uncaught: ${error.message}`));
    await page.goto(server.url);
    // Interactive once the client exists (the file input is enabled after hydration).
    await page.locator('input[type=file]:enabled').waitFor();
  });

  afterEach(async () => {
    await page.close();
  });

  /** The page's console errors, apart from the browser's own line for each expected refusal. */
  function unexpectedErrors(...expectedStatuses: number[]): string[] {
    return pageErrors.filter(
      (text) => !expectedStatuses.some((status) => text.includes(`the server responded with a status of ${status}`)),
    );
  }

  async function useKey(key: string): Promise<void> {
    await page.getByLabel('Key').fill(key);
    await expect.poll(() => page.getByText('No committed files yet.').isVisible(), { timeout: 10_000 }).toBe(true);
  }

  it('serves the page and the API from one next start', async () => {
    expect(await page.title()).toBe('attache on Next.js');
    expect(await page.getByText(`Up to ${(MAX_BYTES / 1024 / 1024).toFixed(1)} MiB each`).isVisible()).toBe(true);
    const health = await fetch(`${server.url}/v1/healthz`);
    expect(await health.json()).toEqual({ ok: true });
    await page.screenshot({ path: join(SCREENSHOTS, '1-empty.png'), fullPage: true });
    expect(unexpectedErrors()).toEqual([]);
  });

  it('reaches every control from the keyboard, in order', async () => {
    await page.getByLabel('Key').focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('type'))).toBe('number');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('type'))).toBe('checkbox');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('type'))).toBe('file');
  });

  it('uploads three picked files with progress to 100 %, lists them as staged, commits them, and serves them byte for byte', async () => {
    await useKey('browser/commit');
    const files = [
      { name: 'notes.txt', mimeType: 'text/plain', buffer: randomText(300 * 1024) },
      { name: 'data.bin', mimeType: 'application/octet-stream', buffer: randomBytes(200 * 1024) },
      { name: 'square.png', mimeType: 'image/png', buffer: solidPng(64, 64) },
    ];
    // Uploads over loopback finish in a blink: slow the page's upload down so
    // that the progress bars have something to show.
    const devtools = await page.context().newCDPSession(page);
    await devtools.send('Network.enable');
    await devtools.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 192 * 1024 });

    await page.locator('input[type=file]').setInputFiles(files);
    const seen = await watchProgress(page, files.length, () => page.screenshot({ path: join(SCREENSHOTS, '2-uploading.png'), fullPage: true }));
    await devtools.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

    expect(seen.some((percent) => percent > 0 && percent < 100), `progress seen: ${seen.join(', ')}`).toBe(true);
    const staged = page.getByRole('list', { name: 'Staged files' }).getByRole('listitem');
    await expect.poll(() => staged.count(), { timeout: 10_000 }).toBe(3);
    expect(await page.locator('.percent').allTextContents()).toEqual(['100 %', '100 %', '100 %']);
    expect(await staged.locator('.name').allTextContents()).toEqual(['data.bin', 'notes.txt', 'square.png']);
    // Staged files are the lease's alone: the public list is still empty.
    expect(await page.getByText('No committed files yet.').isVisible()).toBe(true);
    await page.screenshot({ path: join(SCREENSHOTS, '3-staged.png'), fullPage: true });

    // Committed from the keyboard.
    await page.getByRole('button', { name: 'Commit' }).focus();
    await page.keyboard.press('Enter');
    await page.getByText('Committed 3 files to browser/commit.').waitFor();
    const committed = page.getByRole('list', { name: 'Committed files' });
    await expect.poll(() => committed.getByRole('link').allTextContents(), { timeout: 10_000 }).toEqual(['data.bin', 'notes.txt', 'square.png']);
    const preview = committed.getByRole('img', { name: 'square.png' });
    await expect.poll(() => preview.evaluate((image: HTMLImageElement) => image.complete && image.naturalWidth), { timeout: 10_000 }).toBe(64);
    await page.screenshot({ path: join(SCREENSHOTS, '4-committed.png'), fullPage: true });

    // The download link serves exactly the bytes that were picked.
    const href = await committed.getByRole('link', { name: 'data.bin' }).getAttribute('href');
    const downloaded = await page.evaluate(async (url) => {
      const response = await fetch(url);
      const bytes = new Uint8Array(await response.arrayBuffer());
      let binary = '';
      for (const byte of bytes) binary += String.fromCharCode(byte);
      return { status: response.status, disposition: response.headers.get('content-disposition'), base64: btoa(binary) };
    }, href!);
    expect(downloaded.status).toBe(200);
    expect(downloaded.disposition).toMatch(/^attachment; filename="data.bin"/);
    expect(sha256(Buffer.from(downloaded.base64, 'base64'))).toBe(sha256(files[1]!.buffer));
    expect(unexpectedErrors()).toEqual([]);
  });

  it('stages a file through Uppy’s tus plugin, resuming after the network cuts a PATCH, and serves it byte for byte', async () => {
    await useKey('browser/resumable');
    await page.getByLabel('Resumable uploads (tus)').check();
    const file = { name: 'large.bin', mimeType: 'application/octet-stream', buffer: randomBytes(3 * 1024 * 1024 + 4321) };
    // The second PATCH (bytes from 1 MiB on) is cut by the network once.
    const tusRequests: string[] = [];
    let patches = 0;
    await page.route('**/v1/uploads/**', async (route) => {
      const request = route.request();
      tusRequests.push(`${request.method()} ${request.headers()['upload-offset'] ?? ''}`.trim());
      if (request.method() === 'PATCH' && ++patches === 2) return route.abort('connectionreset');
      return route.continue();
    });
    await page.locator('input[type=file]').setInputFiles([file]);
    const staged = page.getByRole('list', { name: 'Staged files' }).getByRole('listitem');
    await expect.poll(() => staged.locator('.name').allTextContents(), { timeout: 20_000 }).toEqual(['large.bin']);
    expect(await page.locator('.percent').allTextContents()).toEqual(['100 %']);
    // Resumed where the server's bytes ended: a HEAD, then the cut chunk again.
    const mib = String(1024 * 1024);
    expect(tusRequests).toEqual(['PATCH 0', `PATCH ${mib}`, 'HEAD', `PATCH ${mib}`, `PATCH ${2 * 1024 * 1024}`, `PATCH ${3 * 1024 * 1024}`]);

    await page.getByRole('button', { name: 'Commit' }).click();
    await page.getByText('Committed 1 file to browser/resumable.').waitFor();
    const href = await page.getByRole('list', { name: 'Committed files' }).getByRole('link', { name: 'large.bin' }).getAttribute('href');
    const answer = await page.request.get(new URL(href!, server.url).href);
    expect(answer.status()).toBe(200);
    expect(sha256(await answer.body())).toBe(sha256(file.buffer));
    // The cut PATCH is the browser's own console error; nothing else.
    expect(unexpectedErrors().filter((text) => !text.includes('ERR_CONNECTION_RESET'))).toEqual([]);
  });

  it('tells a person a file is too large for a resumable upload too (413 at creation), and keeps nothing of it', async () => {
    await useKey('browser/resumable-too-large');
    await page.getByLabel('Resumable uploads (tus)').check();
    await page.locator('input[type=file]').setInputFiles([{ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: randomBytes(MAX_BYTES + 512 * 1024) }]);
    await page.getByRole('alert').getByText('huge.bin is too large: 4.5 MiB, and this server accepts files up to 4.0 MiB. Nothing of it was kept.').waitFor();
    expect(await page.getByText('Nothing staged yet.').isVisible()).toBe(true);
    // Uppy logs the refused creation as an error of its own.
    expect(unexpectedErrors(413).filter((text) => !text.includes('[Uppy]'))).toEqual([]);
  });

  it('stages files dropped on the drop zone', async () => {
    await useKey('browser/drop');
    const dataTransfer = await page.evaluateHandle(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['dropped, not picked'], 'dropped.txt', { type: 'text/plain' }));
      return transfer;
    });
    await page.locator('.dropzone').dispatchEvent('drop', { dataTransfer });
    await expect.poll(() => page.getByRole('list', { name: 'Staged files' }).locator('.name').allTextContents(), { timeout: 10_000 }).toEqual(['dropped.txt']);
    expect(unexpectedErrors()).toEqual([]);
  });

  it('says what a valid key looks like when the key is not one', async () => {
    await page.getByLabel('Key').fill('Orders 1');
    await page.getByRole('alert').getByText('“Orders 1” is not a valid key', { exact: false }).waitFor();
    expect(unexpectedErrors(400)).toEqual([]);
  });

  it('discards a rolled-back batch: nothing of it is committed', async () => {
    await useKey('browser/rollback');
    await page.locator('input[type=file]').setInputFiles([
      { name: 'draft-1.txt', mimeType: 'text/plain', buffer: randomText(10_000) },
      { name: 'draft-2.txt', mimeType: 'text/plain', buffer: randomText(20_000) },
    ]);
    await expect.poll(() => page.getByRole('list', { name: 'Staged files' }).getByRole('listitem').count(), { timeout: 10_000 }).toBe(2);
    await page.getByRole('button', { name: 'Discard' }).click();
    await page.getByText('Discarded 2 staged files; nothing of the batch was committed.').waitFor();
    expect(await page.getByText('No committed files yet.').isVisible()).toBe(true);
    const listed = await fetch(`${server.url}/v1/attachments?key=browser/rollback`);
    expect((await listed.json()).attachments).toEqual([]);
    expect(unexpectedErrors()).toEqual([]);
  });

  it('tells a person a file is too large (413) and keeps nothing of it', async () => {
    await useKey('browser/too-large');
    await page.locator('input[type=file]').setInputFiles([
      { name: 'huge.bin', mimeType: 'application/octet-stream', buffer: randomBytes(MAX_BYTES + 512 * 1024) },
      { name: 'small.txt', mimeType: 'text/plain', buffer: randomText(1000) },
    ]);
    const alert = page.getByRole('alert');
    await alert.getByText('huge.bin is too large: 4.5 MiB, and this server accepts files up to 4.0 MiB. Nothing of it was kept.').waitFor();
    // The other file of the batch is staged all the same.
    await expect.poll(() => page.getByRole('list', { name: 'Staged files' }).locator('.name').allTextContents(), { timeout: 10_000 }).toEqual(['small.txt']);
    await page.screenshot({ path: join(SCREENSHOTS, '5-too-large.png'), fullPage: true });
    expect(unexpectedErrors(413)).toEqual([]);
  });

  it('tells a person a file arrived damaged (checksum mismatch) and keeps nothing of it', async () => {
    await useKey('browser/damaged');
    // Damage in transit, as a faulty proxy would: the checksum header no longer matches the bytes.
    await page.route('**/v1/attachments?*', (route) =>
      route.continue({ headers: { ...route.request().headers(), 'x-attachment-crc32': '00000000' } }),
    );
    await page.locator('input[type=file]').setInputFiles([{ name: 'report.txt', mimeType: 'text/plain', buffer: randomText(4000) }]);
    await page.getByRole('alert').getByText('report.txt arrived damaged: its checksum did not match the bytes the server received.', { exact: false }).waitFor();
    expect(await page.getByText('Nothing staged yet.').isVisible()).toBe(true);
    expect(unexpectedErrors(400)).toEqual([]);
  });

  it('tells a person the lease expired when they commit too late', async () => {
    await useKey('browser/expired');
    await page.getByLabel('Lease length (seconds)').fill('3');
    await page.locator('input[type=file]').setInputFiles([{ name: 'late.txt', mimeType: 'text/plain', buffer: randomText(100) }]);
    await expect.poll(() => page.getByRole('list', { name: 'Staged files' }).getByRole('listitem').count(), { timeout: 10_000 }).toBe(1);
    await page.getByText(': expired.', { exact: false }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Commit' }).click();
    await page.getByRole('alert').getByText('The lease expired before it was released, so its staged files were discarded.', { exact: false }).waitFor();
    expect(await page.getByText('No committed files yet.').isVisible()).toBe(true);
    expect(unexpectedErrors(403)).toEqual([]);
  }, 60_000);
});

describeExternalHttpContract('next-example route handler (next build, next start)', async () => {
  // The contract's own limits (8 MiB bodies, max_bytes per call) need the store's default limit, 1 TiB.
  const running = await startNext({ ATTACHE_MAX_BYTES: String(1024 ** 4) });
  const blobsRoot = join(running.dataDir, 'blobs');
  const metadata = sqliteMetadata({ filename: join(running.dataDir, 'attache.db') });
  // As the app stores them: small blobs in the database (the contract then sees every blob, file or row).
  const blobs = inlineSmallBlobs(fsBlobs({ root: blobsRoot }), metadata, { maxBytes: 64 * 1024, now: Date.now });
  // The server migrated the database on its first request (the health check).
  const store = createAttachmentStore({ metadata, blobs, sweepIntervalSeconds: 0 });
  return {
    baseUrl: `${running.url}/v1`,
    store,
    blobs,
    stagingDir: join(blobsRoot, '.tmp'),
    async close() {
      await store.close();
      await running.stop();
    },
  };
  // Next.js drops the Content-Length of every route handler response, HEAD
  // included, and sends bodies chunked (FORBIDDEN_HEADERS in
  // next/dist/server/send-response.js: it cannot tell a body fetch decoded
  // from one it did not); the size is in X-Attachment-Size. If a Next release
  // keeps the header, the download scenarios fail here and this goes.
  // Next's server may also close the connection as it answers a body it did
  // not read (413 past max_bytes): a client still sending 4 MiB saw a reset
  // instead of the 413 in one CI run of several, so either is accepted
  // there, and nothing may be kept either way.
}, { streamedContentLength: false, headContentLength: false, earlyAnswerDelivered: false, forbiddenMethodsReachMount: false });

/** Builds the app unless the last build is fresh, and says how long a build took. */
function buildOnceAndSay(): void {
  const { builtInMs } = buildOnce();
  if (builtInMs !== undefined) console.info(`next build took ${(builtInMs / 1000).toFixed(1)} s`);
}

/**
 * Polls the page's progress bars until `count` of them are full, calling
 * `whileUploading` once the first time one is part-way; returns every
 * percentage seen.
 */
async function watchProgress(page: Page, count: number, whileUploading: () => Promise<unknown>): Promise<number[]> {
  const seen: number[] = [];
  let captured = false;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const percents = await page.locator('progress').evaluateAll((bars: HTMLProgressElement[]) => bars.map((bar) => Math.floor((bar.value / bar.max) * 100)));
    seen.push(...percents);
    if (!captured && percents.some((percent) => percent > 0 && percent < 100)) {
      captured = true;
      await whileUploading();
    }
    if (percents.length === count && percents.every((percent) => percent === 100)) return seen;
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  throw new Error(`progress did not reach 100 % on ${count} bars; seen: ${seen.join(', ')}`);
}

function randomBytes(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7919 + (i >> 8) * 31) & 0xff;
  return bytes;
}

function randomText(size: number): Buffer {
  const line = 'attache stages files under a lease and commits them together.\n';
  return Buffer.from(line.repeat(Math.ceil(size / line.length)).slice(0, size));
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A `width`×`height` PNG of one colour (RGB, no filter), built with zlib. */
function solidPng(width: number, height: number): Buffer {
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => [0x0b, 0x5f, 0xd6]).flat())]);
  const chunk = (type: string, data: Buffer) => {
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const checksum = Buffer.alloc(4);
    checksum.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, checksum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.writeUInt8(8, 8); // bit depth
  header.writeUInt8(2, 9); // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(Array.from({ length: height }, () => row)))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
