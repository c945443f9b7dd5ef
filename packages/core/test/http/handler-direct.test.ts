// Handler behaviour that real HTTP framing hides: the handler is called with
// hand-built Requests whose bodies record how far they were read.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AttacheError } from '../../src/errors.js';
import { createHandler } from '../../src/http/index.js';
import { memoryBlobs } from '../../src/memory/blobs.js';
import { memoryMetadata } from '../../src/memory/metadata.js';
import { createAttachmentStore } from '../../src/store.js';
import type { AttachmentStore, Lease } from '../../src/types.js';
import { bytes, countingStream, postRequest } from './helpers.js';

let store: AttachmentStore;
let lease: Lease;
const handler = (request: Request) => createHandler({ store })(request);
const base = 'http://test.local/v1';

beforeEach(async () => {
  store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs(), sweepIntervalSeconds: 0 });
  lease = await store.acquire({ key: 'direct/key', owner: 'test', ttlSeconds: 60 });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await store.close();
});

function leaseHeaders(): Record<string, string> {
  return { 'X-Lease-ID': lease.leaseId, 'X-Txn-ID': lease.txnId, 'X-Fencing-Token': String(lease.fencingToken) };
}

describe('createHandler (direct calls)', () => {
  it('answers prevent_overwrite without pulling a single chunk of the body', async () => {
    await lease.attach({ name: 'exists.txt', body: bytes('old') });
    const source = countingStream([bytes('new bytes'), bytes(' and more')]);
    const response = await handler(
      postRequest(source.stream, leaseHeaders(), `${base}/attachments?key=direct/key&name=exists.txt&prevent_overwrite=1`),
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ noop: true, attachment: { name: 'exists.txt', size: 3 } });
    expect(source.pulled()).toBe(0);
  });

  it('checks every parameter before reading the body', async () => {
    const source = countingStream([bytes('payload')]);
    const response = await handler(
      postRequest(source.stream, { ...leaseHeaders(), 'X-Fencing-Token': 'x' }, `${base}/attachments?key=direct/key&name=a`),
    );
    expect((await response.json()) as unknown).toMatchObject({ error: 'invalid_fencing_token' });
    expect(source.pulled()).toBe(0);
  });

  it('answers size_mismatch when the body is shorter than its Content-Length', async () => {
    const request = postRequest(bytes('seven!!'), { ...leaseHeaders(), 'Content-Length': '10' }, `${base}/attachments?key=direct/key&name=s.bin`);
    const response = await handler(request);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'size_mismatch' });
    expect(await lease.list()).toEqual([]);
  });

  it('maps an unexpected error to a generic 500 and logs it once', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const broken = { ...store, listAttachments: () => Promise.reject(new Error('disk on fire at /secret/path')) } as AttachmentStore;
    const response = await createHandler({ store: broken })(new Request(`${base}/attachments?key=a`));
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: 'internal', detail: 'internal server error' });
    expect(logged).toHaveBeenCalledTimes(1);
  });

  it('passes an AttacheError from the store through with its status and Retry-After', async () => {
    const down = {
      ...store,
      listAttachments: () => Promise.reject(new AttacheError('unavailable', 'storage is down', { retryAfterSeconds: 2.2 })),
    } as AttachmentStore;
    const response = await createHandler({ store: down })(new Request(`${base}/attachments?key=a`));
    expect(response.status).toBe(503);
    expect(response.headers.get('Retry-After')).toBe('3');
    expect(await response.json()).toEqual({ error: 'unavailable', detail: 'storage is down', retry_after_seconds: 3 });
  });

  it('gives up waiting for a key when the client goes away', async () => {
    const controller = new AbortController();
    const request = new Request(`${base}/acquire`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'direct/key', owner: 'waiter', ttl_seconds: 5, block_seconds: 0 }),
      signal: controller.signal,
    });
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const pending = handler(request);
    setTimeout(() => controller.abort(), 50);
    const response = await pending;
    expect(response.status).not.toBe(200);
    expect(logged).not.toHaveBeenCalled();
  });

  it('serves routes under a custom base path and 404s outside it', async () => {
    const custom = createHandler({ store, basePath: '/files/' });
    expect((await custom(new Request('http://test.local/files/healthz'))).status).toBe(200);
    expect(await (await custom(new Request('http://test.local/v1/healthz'))).json()).toMatchObject({ error: 'not_found' });
    const root = createHandler({ store, basePath: '' });
    expect((await root(new Request('http://test.local/healthz'))).status).toBe(200);
  });
});

describe('createHandler limits and hooks', () => {
  it('refuses an upload past maxConcurrentUploads with 503 and Retry-After, before reading its body', async () => {
    const limited = createHandler({ store, maxConcurrentUploads: 1 });
    let finishFirst!: () => void;
    const firstBody = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes('first'));
        finishFirst = () => controller.close();
      },
    });
    const first = limited(postRequest(firstBody, leaseHeaders(), `${base}/attachments?key=direct/key&name=one`));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = countingStream([bytes('second')]);
    const refused = await limited(postRequest(second.stream, leaseHeaders(), `${base}/attachments?key=direct/key&name=two`));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('Retry-After')).toBe('1');
    expect(await refused.json()).toMatchObject({ error: 'unavailable', retry_after_seconds: 1 });
    expect(second.pulled()).toBe(0);
    finishFirst();
    expect((await first).status).toBe(200);
    const third = await limited(postRequest(bytesStream('third'), leaseHeaders(), `${base}/attachments?key=direct/key&name=three`));
    expect(third.status).toBe(200);
  });

  it('gives the authorize hook the namespace and key of an attachment read by id alone, and lets it refuse', async () => {
    await lease.attach({ name: 'secret.txt', body: bytes('tenant data') });
    const { attachment } = await lease.attach({ name: 'other.txt', body: bytes('x') });
    await lease.release();
    const seen: Array<{ action: string; namespace?: string; key?: string }> = [];
    const guarded = createHandler({
      store,
      authorize: ({ action, namespace, key }) => {
        seen.push({ action, ...(namespace === undefined ? {} : { namespace }), ...(key === undefined ? {} : { key }) });
        return key !== 'direct/key';
      },
    });
    const denied = await guarded(new Request(`${base}/attachment?id=${attachment.id}`));
    expect(denied.status).toBe(401);
    expect(seen).toEqual([{ action: 'download', namespace: 'default', key: 'direct/key' }]);
    const unknown = await guarded(new Request(`${base}/attachment?id=0190b6e0-0000-7000-8000-000000000000`));
    expect(unknown.status).toBe(404);
  });
});

function bytesStream(text: string): ReadableStream<Uint8Array> {
  return new Blob([text]).stream();
}
