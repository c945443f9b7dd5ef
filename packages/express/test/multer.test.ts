// attacheStorage() under multer 2: files land in attache as documents or
// staged under a lease, and a failed request leaves nothing behind — not the
// file cut short, not the files that finished before it.
import { request as httpRequest } from 'node:http';
import {
  createAttachmentStore,
  isAttacheError,
  memoryBlobs,
  memoryMetadata,
  type AttachmentStore,
  type Lease,
} from '@attache/core';
import express, { type ErrorRequestHandler } from 'express';
import multer, { MulterError } from 'multer';
import { watchedBlobs, type WatchedBlobs } from '@attache/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attacheStorage, leaseFromHeaders, type AttacheFileInfo, type AttacheStorageEngine } from '../src/index.js';
import { listenApp, type RunningApp } from './listen.js';

let store: AttachmentStore;
let blobs: WatchedBlobs;
let running: RunningApp | undefined;
/** Every file the storage engine finished, in order (observed, not replaced). */
let stored: AttacheFileInfo[];

beforeEach(() => {
  blobs = watchedBlobs(memoryBlobs());
  store = createAttachmentStore({ metadata: memoryMetadata(), blobs, sweepIntervalSeconds: 0 });
  stored = [];
});
afterEach(async () => {
  await running?.close();
  running = undefined;
  await store.close();
});

const blobPaths = () => blobs.paths();

/** Records what the engine stored, then hands on its answer unchanged. */
function observed(engine: AttacheStorageEngine): AttacheStorageEngine {
  return {
    _handleFile: (req, file, callback) =>
      engine._handleFile(req, file, (error, info) => {
        if (!error && info) stored.push(info as AttacheFileInfo);
        callback(error, info);
      }),
    _removeFile: (req, file, callback) => engine._removeFile(req, file, callback),
  };
}

/** An app with one upload route: `single` or `array` of field `file`. */
async function startApp(options: { fileSize?: number; many?: boolean; withLease?: boolean } = {}): Promise<string> {
  const app = express();
  const upload = multer({
    storage: observed(attacheStorage({ store, ...(options.withLease ? { lease: leaseFromHeaders } : {}) })),
    limits: options.fileSize === undefined ? {} : { fileSize: options.fileSize },
  });
  app.post('/upload', options.many ? upload.array('file') : upload.single('file'), (req, res) => {
    res.json({ file: req.file, files: req.files });
  });
  const onError: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
    const code = error instanceof MulterError ? error.code : isAttacheError(error) ? error.code : 'other';
    const status = code === 'LIMIT_FILE_SIZE' ? 413 : isAttacheError(error) ? error.status : 500;
    res.status(status).json({ code, storageErrors: (error as { storageErrors?: unknown[] }).storageErrors?.length ?? 0 });
  };
  app.use(onError);
  running = await listenApp(app);
  return running.url;
}

function form(files: [string, string | Uint8Array<ArrayBuffer>, string?][]): FormData {
  const data = new FormData();
  for (const [name, content, type] of files) data.append('file', new Blob([content], { type: type ?? 'application/octet-stream' }), name);
  return data;
}

async function acquire(key: string): Promise<Lease> {
  return store.acquire({ key, owner: 'test', ttlSeconds: 60 });
}

const headersOf = (lease: Lease) => ({
  'X-Lease-ID': lease.leaseId,
  'X-Txn-ID': lease.txnId,
  'X-Fencing-Token': String(lease.fencingToken),
});

describe('attacheStorage (multer StorageEngine)', () => {
  it('stores a file as a committed document and describes it on req.file', async () => {
    const url = await startApp();
    const response = await fetch(`${url}/upload`, { method: 'POST', body: form([['report.pdf', '%PDF-1.7 tiny', 'application/pdf']]) });
    expect(response.status).toBe(200);
    const { file } = (await response.json()) as { file: Record<string, unknown> };
    expect(file).toMatchObject({
      fieldname: 'file',
      originalname: 'report.pdf',
      mimetype: 'application/pdf',
      name: 'report.pdf',
      size: 13,
      contentType: 'application/pdf',
      staged: false,
      namespace: 'default',
    });
    expect(file.ref).toBe(`attachment://${String(file.id)}`);
    expect(file.crc32).toMatch(/^[0-9a-f]{8}$/);
    expect(file.sha256).toMatch(/^[0-9a-f]{64}$/);
    const { body, header } = await store.get(file.ref as `attachment://${string}`);
    expect(header.mimeType).toBe('application/pdf');
    expect(await new Response(body).text()).toBe('%PDF-1.7 tiny');
  });

  it('stages files under the lease named by the request headers, visible to all once released', async () => {
    const url = await startApp({ many: true, withLease: true });
    const lease = await acquire('orders/1');
    const response = await fetch(`${url}/upload?key=orders/1`, {
      method: 'POST',
      headers: headersOf(lease),
      body: form([
        ['a.txt', 'first'],
        ['b.txt', 'second'],
      ]),
    });
    expect(response.status).toBe(200);
    const { files } = (await response.json()) as { files: AttacheFileInfo[] };
    expect(files.map((f) => [f.name, f.key, f.staged])).toEqual([
      ['a.txt', 'orders/1', true],
      ['b.txt', 'orders/1', true],
    ]);
    expect(await store.listAttachments({ key: 'orders/1' })).toEqual([]);
    await lease.release();
    expect((await store.listAttachments({ key: 'orders/1' })).map((a) => a.name)).toEqual(['a.txt', 'b.txt']);
  });

  it('answers a bad lease with the precise attache error and stores nothing', async () => {
    const url = await startApp({ withLease: true });
    const lease = await acquire('orders/2');
    const response = await fetch(`${url}/upload?key=orders/2`, {
      method: 'POST',
      headers: { ...headersOf(lease), 'X-Fencing-Token': String(lease.fencingToken + 1) },
      body: form([['a.txt', 'x']]),
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 'fencing_mismatch' });
    expect(await blobPaths()).toEqual([]);
  });

  it('fails with LIMIT_FILE_SIZE past limits.fileSize and keeps no blob and no row of the cut file', async () => {
    const url = await startApp({ fileSize: 1024 });
    const response = await fetch(`${url}/upload`, { method: 'POST', body: form([['big.bin', new Uint8Array(64 * 1024)]]) });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ code: 'LIMIT_FILE_SIZE' });
    expect(stored).toEqual([]);
    expect(await blobPaths()).toEqual([]);
    // Nothing for the sweeper to find either: no orphan, no unfinished transaction.
    expect(await store.sweep()).toMatchObject({ orphansDeleted: 0, rolledBackTxns: 0 });
  });

  it('keeps nothing of a staged file whose limit is exceeded, and the lease goes on', async () => {
    const url = await startApp({ fileSize: 1024, withLease: true });
    const lease = await acquire('orders/3');
    const response = await fetch(`${url}/upload?key=orders/3`, { method: 'POST', headers: headersOf(lease), body: form([['big.bin', new Uint8Array(4096)]]) });
    expect(response.status).toBe(413);
    expect(await lease.list()).toEqual([]);
    expect(await blobPaths()).toEqual([]);
    await lease.attach({ name: 'later.txt', body: new TextEncoder().encode('fine') });
    await lease.release();
    expect((await store.listAttachments({ key: 'orders/3' })).map((a) => a.name)).toEqual(['later.txt']);
  });

  it('removes the first document when the second file of the request fails (_removeFile)', async () => {
    const url = await startApp({ fileSize: 1024, many: true });
    const response = await fetch(`${url}/upload`, {
      method: 'POST',
      body: form([
        ['small.txt', 'fits'],
        ['big.bin', new Uint8Array(8192)],
      ]),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ code: 'LIMIT_FILE_SIZE', storageErrors: 0 });
    // The first file was committed before the second failed…
    expect(stored.map((file) => file.name)).toEqual(['small.txt']);
    // …and is gone now, bytes included.
    await expect(store.stat(stored[0]!.id)).rejects.toMatchObject({ code: 'attachment_not_found' });
    expect(await blobPaths()).toEqual([]);
  });

  it('unstages the first file under a lease when the second fails, leaving the lease usable', async () => {
    const url = await startApp({ fileSize: 1024, many: true, withLease: true });
    const lease = await acquire('orders/4');
    const response = await fetch(`${url}/upload?key=orders/4`, {
      method: 'POST',
      headers: headersOf(lease),
      body: form([
        ['small.txt', 'fits'],
        ['big.bin', new Uint8Array(8192)],
      ]),
    });
    expect(response.status).toBe(413);
    expect(stored.map((file) => file.name)).toEqual(['small.txt']);
    expect(await lease.list()).toEqual([]);
    await lease.release();
    expect(await store.listAttachments({ key: 'orders/4' })).toEqual([]);
    expect(await blobPaths()).toEqual([]);
  });

  it('unstages a file of a failed request that overwrote an existing name, keeping the committed version and the lease', async () => {
    const first = await acquire('orders/5');
    await first.attach({ name: 'small.txt', body: new TextEncoder().encode('committed') });
    await first.release();
    const url = await startApp({ fileSize: 1024, many: true, withLease: true });
    const lease = await acquire('orders/5');
    const response = await fetch(`${url}/upload?key=orders/5`, {
      method: 'POST',
      headers: headersOf(lease),
      body: form([
        ['small.txt', 'replacement'],
        ['big.bin', new Uint8Array(8192)],
      ]),
    });
    expect(response.status).toBe(413);
    expect(stored.map((file) => [file.name, file.replaced])).toEqual([['small.txt', true]]);
    const [committed] = await store.listAttachments({ key: 'orders/5' });
    const opened = await store.openAttachment({ key: 'orders/5', name: 'small.txt' });
    expect(await new Response(opened.body).text()).toBe('committed');
    expect(committed?.size).toBe(9);
    // The lease and the rest of its transaction live on; it sees the committed version again.
    expect((await lease.list()).map((file) => [file.name, file.size])).toEqual([['small.txt', 9]]);
    await lease.release();
    expect(await blobPaths()).toHaveLength(1);
  });

  it('keeps nothing when the client disconnects in the middle of a file', async () => {
    const url = await startApp({ withLease: true });
    const lease = await acquire('orders/6');
    const boundary = 'cutBoundary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    const request = httpRequest(`${url}/upload?key=orders/6`, {
      method: 'POST',
      headers: { ...headersOf(lease), 'Content-Type': `multipart/form-data; boundary=${boundary}` },
    });
    request.on('error', () => {}); // the reset caused by destroy()
    request.write(head);
    request.write(Buffer.alloc(512 * 1024, 1));
    // Wait until the engine is streaming the file into the blob store.
    const deadline = Date.now() + 5_000;
    while (blobs.bytesPut < 256 * 1024) {
      if (Date.now() > deadline) throw new Error('the engine never streamed the file');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    request.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stored).toEqual([]);
    expect(await lease.list()).toEqual([]);
    expect(await blobPaths()).toEqual([]);
    // The lease is unharmed.
    await lease.attach({ name: 'after.txt', body: new TextEncoder().encode('ok') });
    expect((await lease.list()).map((a) => a.name)).toEqual(['after.txt']);
  });
});
