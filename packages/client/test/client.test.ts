// @attache/client against a real server over loopback: leases, public reads,
// the document face, progress, typed errors and bounded retries.
import { AttacheError as CoreAttacheError } from '@attache/core';
import { expectCode, readText } from '@attache/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AttacheError, createClient, isAttacheError, type AttacheClient, type UploadProgress } from '../src/index.js';
import { startFlakyProxy, startServer, type TestServer } from './server.js';

const bytes = (text: string) => new TextEncoder().encode(text);

/** `size` zero bytes in chunks of `chunkSize`, produced on demand. */
function chunked(size: number, chunkSize: number): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left === 0) return controller.close();
      const length = Math.min(chunkSize, left);
      left -= length;
      controller.enqueue(new Uint8Array(length));
    },
  });
}

describe('@attache/client', () => {
  let server: TestServer;
  let client: AttacheClient;
  beforeEach(async () => {
    server = await startServer();
    client = createClient({ baseUrl: server.baseUrl });
  });
  afterEach(async () => {
    await server.close();
  });

  describe('leases', () => {
    it('stages attachments under the lease and publishes them on release', async () => {
      const lease = await client.acquire({ key: 'orders/1', ttlSeconds: 30, owner: 'test' });
      expect(lease).toMatchObject({ key: 'orders/1', namespace: 'default', owner: 'test', fencingToken: 1 });
      const { attachment, noop } = await lease.attach({ name: 'note.txt', body: bytes('hello'), contentType: 'text/plain' });
      expect(noop).toBe(false);
      expect(attachment).toMatchObject({ name: 'note.txt', key: 'orders/1', size: 5, contentType: 'text/plain', extension: 'txt', crc32: '3610a686' });
      expect(attachment.createdAt).toBeInstanceOf(Date);
      expect((await lease.list()).map((a) => a.name)).toEqual(['note.txt']);
      expect(await client.listAttachments({ key: 'orders/1' })).toEqual([]);
      const staged = await lease.get({ name: 'note.txt' });
      expect(staged.attachment).toMatchObject({ id: attachment.id, name: 'note.txt', size: 5 });
      expect(await readText(staged.body)).toBe('hello');
      await expectCode(client.getAttachment({ key: 'orders/1', name: 'note.txt' }), 'attachment_not_found');

      expect(await lease.release()).toEqual({ released: true });
      expect((await client.listAttachments({ key: 'orders/1' })).map((a) => a.id)).toEqual([attachment.id]);
      expect(await readText((await client.getAttachment({ key: 'orders/1', name: 'note.txt' })).body)).toBe('hello');
      expect(await readText((await client.getAttachment({ id: attachment.id })).body)).toBe('hello');
    });

    it('sends expected checksums: matching bytes are staged, damaged ones refused with checksum_mismatch and nothing kept', async () => {
      const lease = await client.acquire({ key: 'sums', ttlSeconds: 30, owner: 'test' });
      const sha256 = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
      const { attachment } = await lease.attach({ name: 'ok.txt', body: bytes('hello'), expectedCrc32: '3610a686', expectedSha256: sha256 });
      expect(attachment).toMatchObject({ crc32: '3610a686', sha256 });
      await expectCode(lease.attach({ name: 'crc.txt', body: bytes('hellO'), expectedCrc32: '3610a686' }), 'checksum_mismatch');
      await expectCode(lease.attach({ name: 'sha.txt', body: bytes('hellO'), expectedSha256: sha256 }), 'checksum_mismatch');
      await expectCode(lease.attach({ name: 'bad.txt', body: bytes('hello'), expectedSha256: 'not hex' }), 'invalid_argument');
      expect((await lease.list()).map((a) => a.name)).toEqual(['ok.txt']);
      await lease.release({ rollback: true });
    });

    it('discards staged writes on release({ rollback: true })', async () => {
      const lease = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'test' });
      await lease.attach({ name: 'a', body: bytes('a') });
      await lease.release({ rollback: true });
      expect(await client.listAttachments({ key: 'k' })).toEqual([]);
      await expectCode(lease.release(), 'txn_rolled_back');
    });

    it('stages delete and deleteAll until release', async () => {
      const first = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'test' });
      await first.attach({ name: 'a', body: bytes('a') });
      await first.attach({ name: 'b', body: bytes('b') });
      await first.attach({ name: 'c', body: bytes('c') });
      await first.release();
      const second = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'test' });
      expect(await second.delete({ name: 'a' })).toEqual({ deleted: true });
      expect(await second.delete({ name: 'nope' })).toEqual({ deleted: false });
      expect((await second.list()).map((a) => a.name)).toEqual(['b', 'c']);
      expect((await client.listAttachments({ key: 'k' })).map((a) => a.name)).toEqual(['a', 'b', 'c']);
      expect(await second.deleteAll()).toEqual({ deleted: 2 });
      await second.release();
      expect(await client.listAttachments({ key: 'k' })).toEqual([]);
    });

    it('honours maxBytes and preventOverwrite', async () => {
      const lease = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'test' });
      await expectCode(lease.attach({ name: 'big', body: new Uint8Array(100), maxBytes: 10 }), 'attachment_too_large');
      const { attachment } = await lease.attach({ name: 'a', body: bytes('first') });
      const again = await lease.attach({ name: 'a', body: bytes('second'), preventOverwrite: true });
      expect(again).toMatchObject({ noop: true, attachment: { id: attachment.id, size: 5 } });
      await lease.release();
    });

    it('extends the lease with keepalive, and renews it automatically until release', async () => {
      const lease = await client.acquire({ key: 'k', ttlSeconds: 1, owner: 'test' });
      const before = lease.expiresAt.getTime();
      const info = await lease.keepalive({ ttlSeconds: 60 });
      expect(info.expiresAt.getTime()).toBeGreaterThan(before);
      expect(lease.expiresAt).toEqual(info.expiresAt);

      const short = await client.acquire({ key: 'short', ttlSeconds: 0.6, owner: 'test' });
      const errors: unknown[] = [];
      short.keepAutomatically({ ttlSeconds: 0.6, everySeconds: 0.15, onError: (error) => errors.push(error) });
      await short.attach({ name: 'a', body: bytes('a') });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // Without the renewals the lease would have expired and release would answer lease_expired.
      expect(await short.release()).toEqual({ released: true });
      expect(errors).toEqual([]);
      expect((await client.listAttachments({ key: 'short' })).map((a) => a.name)).toEqual(['a']);
      await lease.release();
    });

    it('sends the fencing token on every call, so a superseded lease is refused', async () => {
      const old = await client.acquire({ key: 'k', ttlSeconds: 0.2, owner: 'old' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const current = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'new' });
      expect(current.fencingToken).toBe(old.fencingToken + 1);
      await expectCode(old.attach({ name: 'a', body: bytes('a') }), 'fencing_mismatch');
      await expectCode(old.list(), 'fencing_mismatch');
      await current.release();
    });

    it('commits every key of a shared transaction together', async () => {
      const a = await client.acquire({ key: 'a', ttlSeconds: 30, owner: 'test' });
      const b = await client.acquire({ key: 'b', ttlSeconds: 30, owner: 'test', txnId: a.txnId });
      await a.attach({ name: 'x', body: bytes('x') });
      await b.attach({ name: 'y', body: bytes('y') });
      await b.release();
      expect((await client.listAttachments({ key: 'a' })).map((x) => x.name)).toEqual(['x']);
      expect((await client.listAttachments({ key: 'b' })).map((x) => x.name)).toEqual(['y']);
    });
  });

  describe('errors', () => {
    it('rejects with the AttacheError class of core, with code, status and retryAfterSeconds', async () => {
      const holder = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'holder' });
      const error = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'other' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CoreAttacheError);
      expect(AttacheError).toBe(CoreAttacheError);
      expect(isAttacheError(error, 'waiting')).toBe(true);
      expect(error).toMatchObject({ code: 'waiting', status: 409 });
      expect((error as AttacheError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
      await holder.release();
    });

    it('maps bad input to its documented code', async () => {
      await expectCode(client.acquire({ key: 'Bad Key', ttlSeconds: 30, owner: 'o' }), 'invalid_key');
      await expectCode(client.acquire({ key: 'k', ttlSeconds: 0, owner: 'o' }), 'invalid_body');
      await expectCode(client.listAttachments({ key: '' }), 'missing_key');
      await expectCode(client.upload(new Blob(['x']), { name: 'x', contentType: 'image/png;,text/html' }), 'invalid_content_type');
    });

    it('sends the bearer token, and reports a missing one as unauthorized', async () => {
      const guarded = await startServer({ token: 'secret' });
      try {
        await expectCode(createClient({ baseUrl: guarded.baseUrl }).listAttachments({ key: 'k' }), 'unauthorized');
        await expectCode(createClient({ baseUrl: guarded.baseUrl }).stat('0190b6e0-0000-7000-8000-000000000000'), 'unauthorized');
        expect(await createClient({ baseUrl: guarded.baseUrl, token: 'secret' }).listAttachments({ key: 'k' })).toEqual([]);
      } finally {
        await guarded.close();
      }
    });
  });

  describe('retries', () => {
    it('retries a call the server refused with 503 unavailable, after Retry-After', async () => {
      const proxy = await startFlakyProxy(server.baseUrl, 1);
      try {
        const flaky = createClient({ baseUrl: proxy.baseUrl });
        const started = Date.now();
        const lease = await flaky.acquire({ key: 'k', ttlSeconds: 30, owner: 'test' });
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
        expect(proxy.seen.filter((line) => line.startsWith('POST /v1/acquire'))).toHaveLength(2);
        await lease.release();
      } finally {
        await proxy.close();
      }
    });

    it('gives up after the configured number of retries, with unavailable', async () => {
      const proxy = await startFlakyProxy(server.baseUrl, 10);
      try {
        const flaky = createClient({ baseUrl: proxy.baseUrl, retry: { attempts: 2, maxDelayMs: 10 } });
        await expectCode(flaky.listAttachments({ key: 'k' }), 'unavailable');
        expect(proxy.seen).toHaveLength(3);
      } finally {
        await proxy.close();
      }
    });

    it('does not retry a streamed upload, whose body is gone', async () => {
      const proxy = await startFlakyProxy(server.baseUrl, 1);
      try {
        const flaky = createClient({ baseUrl: proxy.baseUrl, retry: { maxDelayMs: 10 } });
        const handle = flaky.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 1 });
        const piped = new Blob(['a']).stream().pipeTo(handle.sink).catch(() => {});
        await expectCode(handle.done, 'unavailable');
        await piped;
        expect(proxy.seen).toHaveLength(1);
      } finally {
        await proxy.close();
      }
    });

    it('retries waiting only for an acquire that asked to wait', async () => {
      const holder = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'holder' });
      await expectCode(client.acquire({ key: 'k', ttlSeconds: 30, owner: 'at-once' }), 'waiting');
      const proxy = await startFlakyProxy(server.baseUrl, 0);
      try {
        const patient = createClient({ baseUrl: proxy.baseUrl, retry: { maxDelayMs: 100 } });
        // The server waits 1 s and answers waiting; the client asks again until the holder is gone.
        const waiting = patient.acquire({ key: 'k', ttlSeconds: 30, owner: 'patient', blockSeconds: 1 });
        setTimeout(() => void holder.release(), 1500);
        const lease = await waiting;
        expect(lease.owner).toBe('patient');
        expect(proxy.seen.filter((line) => line.startsWith('POST /v1/acquire')).length).toBeGreaterThanOrEqual(2);
        await lease.release();
      } finally {
        await proxy.close();
      }
    });
  });

  describe('documents and progress', () => {
    it('uploads a file as a document, readable by id', async () => {
      const file = new File(['document body'], 'Report.PDF', { type: 'application/pdf' });
      const document = await client.upload(file);
      expect(document).toMatchObject({ name: 'Report.PDF', contentType: 'application/pdf', extension: 'pdf', size: 13, key: document.id });
      expect(await readText((await client.get(`attachment://${document.id}`)).body)).toBe('document body');
      await expectCode(client.acquire({ key: document.id, ttlSeconds: 30, owner: 'o' }), 'document_key');
    });

    it('reports upload progress as bytes are sent, up to the total', async () => {
      const size = 8 * 1024 * 1024;
      const reports: UploadProgress[] = [];
      const handle = client.createWithProgress({ mimeType: 'application/octet-stream', fileName: 'big.bin', sizeBytes: size }, (progress) => reports.push(progress));
      await chunked(size, 64 * 1024).pipeTo(handle.sink);
      expect(reports.length).toBeGreaterThan(3);
      expect(reports.at(-1)).toEqual({ sentBytes: size, totalBytes: size });
      expect(reports.every((report, i) => i === 0 || report.sentBytes >= reports[i - 1]!.sentBytes)).toBe(true);

      const leaseReports: UploadProgress[] = [];
      const lease = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
      await lease.attach({ name: 'x', body: new Uint8Array(1000), onProgress: (progress) => leaseReports.push(progress) });
      expect(leaseReports.at(-1)).toEqual({ sentBytes: 1000, totalBytes: 1000 });
      await lease.release();
    });

    it('collects the body into a Blob where request streams are unavailable (browsers), with progress', async () => {
      const collecting = createClient({ baseUrl: server.baseUrl, streamUploads: false });
      const reports: UploadProgress[] = [];
      const handle = collecting.createWithProgress({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 5 }, (progress) => reports.push(progress));
      await new Blob(['hello']).stream().pipeTo(handle.sink);
      expect(await readText((await collecting.get((await handle.done).ref)).body)).toBe('hello');
      expect(reports.at(-1)).toEqual({ sentBytes: 5, totalBytes: 5 });
    });

    it('aborts an upload through its signal, keeping nothing', async () => {
      const controller = new AbortController();
      let pulled = 0;
      const size = 64 * 1024 * 1024;
      let left = size;
      const slow = new ReadableStream<Uint8Array>({
        async pull(streamController) {
          pulled += 1;
          if (pulled === 3) setTimeout(() => controller.abort(), 0);
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (left === 0) return streamController.close();
          left -= 64 * 1024;
          streamController.enqueue(new Uint8Array(64 * 1024));
        },
      });
      const lease = await client.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
      await expect(lease.attach({ name: 'x', body: slow, signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
      expect(pulled).toBeLessThan(size / (64 * 1024));
      expect(await lease.list()).toEqual([]);
      await lease.release();
    });
  });
});
