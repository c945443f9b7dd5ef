// The tus 1.0 resumable-upload routes (`/v1/uploads`), as a specification
// every stack runs over real HTTP: core's handler on memory ports, and on
// SQLite or PostgreSQL with file-system blobs. Raw requests (fetch and
// node:http), so each protocol rule is checked as a client sees it;
// tus-js-client interop is tested on top of this (packages/reliability).
import { request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { AttachmentStore, BlobStore, Lease } from '@attache/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

export interface TusServer {
  /** e.g. `http://127.0.0.1:41234/v1` */
  baseUrl: string;
  store: AttachmentStore;
  blobs: BlobStore;
  /** Moves the store's clock forward. */
  advance(ms: number): void;
  close(): Promise<void>;
}

export interface TusMountOptions {
  maxBytes?: number;
  uploadExpirySeconds?: number;
}

export type TusMount = (options: TusMountOptions) => Promise<TusServer>;

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = { 'Content-Type': 'application/offset+octet-stream' };

export function patternBytes(size: number, seed = 7): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < size; index++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

export function digestsOf(bytes: Uint8Array): { crc32: string; sha256: string } {
  return {
    crc32: (crc32(bytes) >>> 0).toString(16).padStart(8, '0'),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

export function tusMetadata(entries: Record<string, string>): string {
  return Object.entries(entries)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

export interface CreateOptions {
  metadata?: string;
  headers?: Record<string, string>;
  query?: string;
  body?: Uint8Array<ArrayBuffer>;
}

export interface TusClient {
  urlOf(location: string): string;
  create(length: number, options?: CreateOptions): Promise<Response>;
  /** Creates a document upload (filename `file.bin` unless `options.metadata`) and returns its absolute URL. */
  createUrl(length: number, options?: CreateOptions): Promise<string>;
  patch(url: string, offset: number, body: Uint8Array<ArrayBuffer>, headers?: Record<string, string>): Promise<Response>;
  head(url: string, headers?: Record<string, string>): Promise<Response>;
  offset(url: string): Promise<number>;
}

/** Client helpers over one server. */
export function tusClient(baseUrl: string): TusClient {
  const origin = new URL(baseUrl).origin;
  const urlOf = (location: string) => new URL(location, origin).toString();
  return {
    urlOf,
    async create(length, options = {}) {
      const headers: Record<string, string> = { ...TUS, 'Upload-Length': String(length), ...options.headers };
      if (options.metadata !== undefined) headers['Upload-Metadata'] = options.metadata;
      if (options.body) Object.assign(headers, OCTETS);
      return fetch(`${baseUrl}/uploads${options.query ?? ''}`, { method: 'POST', headers, body: options.body ?? null });
    },
    async createUrl(length, options = {}) {
      const response = await this.create(length, { metadata: tusMetadata({ filename: 'file.bin' }), ...options });
      if (response.status !== 201) throw new Error(`create answered ${response.status}: ${await response.text()}`);
      return urlOf(response.headers.get('Location')!);
    },
    patch(url, offset, body, headers = {}) {
      return fetch(url, { method: 'PATCH', headers: { ...TUS, ...OCTETS, 'Upload-Offset': String(offset), ...headers }, body });
    },
    head(url, headers = {}) {
      return fetch(url, { method: 'HEAD', headers: { ...TUS, ...headers } });
    },
    async offset(url) {
      const response = await this.head(url);
      if (response.status !== 200) throw new Error(`HEAD answered ${response.status}`);
      return Number(response.headers.get('Upload-Offset'));
    },
  };
}

/**
 * Sends a PATCH whose body stops after `sendBytes` of `body` and then drops
 * the connection, as a flaky network would. Resolves once the socket is gone.
 */
export function patchThenDrop(url: string, offset: number, body: Uint8Array, sendBytes: number): Promise<void> {
  return new Promise((resolve) => {
    const request = httpRequest(url, {
      method: 'PATCH',
      headers: { ...TUS, ...OCTETS, 'Upload-Offset': String(offset), 'Content-Length': String(body.byteLength) },
    });
    request.on('error', () => resolve());
    request.on('close', () => resolve());
    request.write(body.subarray(0, sendBytes), () => {
      // Give the server a moment to take the bytes, then cut the connection.
      setTimeout(() => request.destroy(), 150);
    });
  });
}

export async function eventuallyTrue(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function blobPaths(blobs: BlobStore, prefix: string): Promise<string[]> {
  const paths: string[] = [];
  for await (const blob of blobs.list(prefix)) paths.push(blob.path);
  return paths;
}

/** Byte equality without vitest's element-by-element diff (minutes on MiBs). */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array | undefined): void {
  expect(expected).toBeDefined();
  expect(actual.byteLength).toBe(expected!.byteLength);
  expect(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(Buffer.from(expected!))).toBe(true);
}

async function download(baseUrl: string, id: string): Promise<Uint8Array> {
  const response = await fetch(`${baseUrl}/attachment?id=${id}`);
  expect(response.status).toBe(200);
  return new Uint8Array(await response.arrayBuffer());
}

export function describeTusProtocol(name: string, mount: TusMount): void {
  describe(`tus resumable uploads: ${name}`, () => {
    let server: TusServer;
    let client: TusClient;
    const open = async (options: TusMountOptions = {}) => {
      server = await mount(options);
      client = tusClient(server.baseUrl);
    };
    beforeEach(async () => {
      await open();
    });
    afterEach(async () => {
      await server.close();
    });

    describe('discovery', () => {
      it('answers OPTIONS with the version, extensions, max size and checksum algorithms, without Tus-Resumable', async () => {
        await server.close();
        await open({ maxBytes: 1_000_000 });
        const response = await fetch(`${server.baseUrl}/uploads`, { method: 'OPTIONS' });
        expect(response.status).toBe(204);
        expect(response.headers.get('Tus-Resumable')).toBe('1.0.0');
        expect(response.headers.get('Tus-Version')).toBe('1.0.0');
        expect(response.headers.get('Tus-Extension')).toBe('creation,creation-with-upload,termination,checksum,expiration');
        expect(response.headers.get('Tus-Max-Size')).toBe('1000000');
        expect(response.headers.get('Tus-Checksum-Algorithm')).toBe('sha1,sha256,crc32');
      });
    });

    describe('document face', () => {
      it('takes the bytes over several PATCHes and makes a committed document of the last one, shaped as POST /v1/attachments', async () => {
        const bytes = patternBytes(300_000);
        const response = await client.create(bytes.byteLength, { metadata: tusMetadata({ filename: 'report.pdf', filetype: 'application/pdf' }) });
        expect(response.status).toBe(201);
        expect(response.headers.get('Tus-Resumable')).toBe('1.0.0');
        expect(response.headers.get('Upload-Offset')).toBe('0');
        expect(response.headers.get('Location')).toMatch(/\/v1\/uploads\/[0-9a-f-]{36}$/);
        const url = client.urlOf(response.headers.get('Location')!);

        const first = await client.patch(url, 0, bytes.subarray(0, 100_000));
        expect(first.status).toBe(204);
        expect(first.headers.get('Upload-Offset')).toBe('100000');
        expect(first.headers.get('X-Attachment-ID')).toBeNull();
        expect(await client.offset(url)).toBe(100_000);
        await client.patch(url, 100_000, bytes.subarray(100_000, 250_000));
        const last = await client.patch(url, 250_000, bytes.subarray(250_000));
        expect(last.status).toBe(204);
        expect(last.headers.get('Upload-Offset')).toBe('300000');
        const id = last.headers.get('X-Attachment-ID')!;

        const attachment = await server.store.getAttachment({ id });
        expect(attachment).toMatchObject({
          id,
          name: 'report.pdf',
          key: id,
          namespace: 'default',
          size: 300_000,
          contentType: 'application/pdf',
          extension: 'pdf',
          ...digestsOf(bytes),
        });
        expectSameBytes(await download(server.baseUrl, id), bytes);
        // The parts are gone once the attachment is written.
        expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
        // HEAD still answers for a finished upload, with the attachment's id.
        const head = await client.head(url);
        expect(head.headers.get('Upload-Offset')).toBe('300000');
        expect(head.headers.get('X-Attachment-ID')).toBe(id);
      });

      it('takes the first bytes with the creation request (creation-with-upload)', async () => {
        const bytes = patternBytes(50_000);
        const response = await client.create(bytes.byteLength, { metadata: tusMetadata({ filename: 'a.bin' }), body: bytes.subarray(0, 20_000) });
        expect(response.status).toBe(201);
        expect(response.headers.get('Upload-Offset')).toBe('20000');
        const url = client.urlOf(response.headers.get('Location')!);
        const last = await client.patch(url, 20_000, bytes.subarray(20_000));
        expect(last.status).toBe(204);
        expectSameBytes(await download(server.baseUrl, last.headers.get('X-Attachment-ID')!), bytes);
      });

      it('makes an empty document at once for Upload-Length: 0', async () => {
        const response = await client.create(0, { metadata: tusMetadata({ filename: 'empty.txt' }) });
        expect(response.status).toBe(201);
        const id = response.headers.get('X-Attachment-ID')!;
        expect(await server.store.getAttachment({ id })).toMatchObject({ size: 0, crc32: '00000000', name: 'empty.txt' });
      });

      it('answers HEAD with offset, length, the metadata as sent, no-store and the expiry', async () => {
        const metadata = tusMetadata({ filename: 'x.txt', filetype: 'text/plain' });
        const url = await client.createUrl(10, { metadata });
        await client.patch(url, 0, patternBytes(4));
        const head = await client.head(url);
        expect(head.status).toBe(200);
        expect(head.headers.get('Upload-Offset')).toBe('4');
        expect(head.headers.get('Upload-Length')).toBe('10');
        expect(head.headers.get('Upload-Metadata')).toBe(metadata);
        expect(head.headers.get('Cache-Control')).toBe('no-store');
        expect(Date.parse(head.headers.get('Upload-Expires')!)).toBeGreaterThan(Date.now());
      });

      it('deletes an upload and its bytes on DELETE (termination)', async () => {
        const url = await client.createUrl(10);
        await client.patch(url, 0, patternBytes(4));
        expect((await blobPaths(server.blobs, 'uploads/')).length).toBe(1);
        const deleted = await fetch(url, { method: 'DELETE', headers: TUS });
        expect(deleted.status).toBe(204);
        expect((await client.head(url)).status).toBe(404);
        expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
      });

      it('keeps the bytes that arrived before a dropped connection, and the resumed upload is whole', async () => {
        const bytes = patternBytes(2 * 1024 * 1024);
        const url = await client.createUrl(bytes.byteLength);
        await patchThenDrop(url, 0, bytes, 1024 * 1024);
        let offset = 0;
        await eventuallyTrue(async () => (offset = await client.offset(url)) > 0);
        expect(offset).toBeLessThanOrEqual(1024 * 1024);
        const last = await client.patch(url, offset, bytes.subarray(offset));
        expect(last.status).toBe(204);
        const id = last.headers.get('X-Attachment-ID')!;
        expect(await server.store.getAttachment({ id })).toMatchObject(digestsOf(bytes));
        expectSameBytes(await download(server.baseUrl, id), bytes);
      });
    });

    describe('lease face', () => {
      let lease: Lease;
      const key = 'tus/leased';
      const leaseHeaders = () => ({
        'X-Lease-ID': lease.leaseId,
        'X-Txn-ID': lease.txnId,
        'X-Fencing-Token': String(lease.fencingToken),
      });
      const createLeased = (length: number) =>
        client.createUrl(length, { metadata: tusMetadata({ filename: 'big.bin' }), headers: leaseHeaders(), query: `?key=${key}` });
      beforeEach(async () => {
        lease = await server.store.acquire({ key, owner: 'tus-test', ttlSeconds: 60 });
      });

      it('stages the attachment only when its last byte arrives, and publishes it on commit', async () => {
        const bytes = patternBytes(100_000);
        const url = await createLeased(bytes.byteLength);
        expect((await client.patch(url, 0, bytes.subarray(0, 60_000))).status).toBe(204);
        expect(await lease.list()).toEqual([]);
        const last = await client.patch(url, 60_000, bytes.subarray(60_000));
        expect(last.status).toBe(204);
        expect(await lease.list()).toMatchObject([{ name: 'big.bin', size: 100_000, ...digestsOf(bytes) }]);
        expect(await server.store.listAttachments({ key })).toEqual([]);
        await lease.release();
        const [published] = await server.store.listAttachments({ key });
        expect(published).toMatchObject({ id: last.headers.get('X-Attachment-ID'), name: 'big.bin', ...digestsOf(bytes) });
        expectSameBytes(await download(server.baseUrl, published!.id), bytes);
      });

      it('loses the staged attachment on rollback', async () => {
        const url = await createLeased(1_000);
        expect((await client.patch(url, 0, patternBytes(1_000))).status).toBe(204);
        expect(await lease.list()).toHaveLength(1);
        await lease.release({ rollback: true });
        expect(await server.store.listAttachments({ key })).toEqual([]);
      });

      for (const ending of ['commit', 'rollback'] as const) {
        it(`refuses a PATCH of an unfinished upload after the transaction's ${ending}, and deletes its bytes`, async () => {
          const url = await createLeased(1_000);
          expect((await client.patch(url, 0, patternBytes(400))).status).toBe(204);
          await lease.release({ rollback: ending === 'rollback' });
          const refused = await client.patch(url, 400, patternBytes(600));
          expect(refused.status).toBe(403);
          expect(await refused.json()).toMatchObject({ error: 'lease_required' });
          expect((await client.head(url)).status).toBe(404);
          expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
          expect(await server.store.listAttachments({ key })).toEqual([]);
        });
      }

      it('refuses a PATCH after the lease expired, and deletes the bytes', async () => {
        const url = await createLeased(1_000);
        await client.patch(url, 0, patternBytes(400));
        server.advance(61_000);
        const refused = await client.patch(url, 400, patternBytes(600));
        expect(refused.status).toBe(403);
        expect(await refused.json()).toMatchObject({ error: 'lease_expired' });
        expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
      });

      it('sweeps an unfinished upload whose transaction ended, with its bytes', async () => {
        const url = await createLeased(1_000);
        await client.patch(url, 0, patternBytes(400));
        await lease.release({ rollback: true });
        const report = await server.store.sweep();
        expect(report.uploadsDeleted).toBeGreaterThanOrEqual(1);
        expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
        expect((await client.head(url)).status).toBe(404);
      });

      it('refuses creation with a bad lease, and a PATCH naming another lease', async () => {
        const refused = await client.create(10, {
          metadata: tusMetadata({ filename: 'x' }),
          headers: { ...leaseHeaders(), 'X-Fencing-Token': String(lease.fencingToken + 1) },
          query: `?key=${key}`,
        });
        expect(refused.status).toBe(403);
        expect(await refused.json()).toMatchObject({ error: 'fencing_mismatch' });
        const url = await createLeased(10);
        const other = await server.store.acquire({ key: 'tus/other', owner: 'tus-test', ttlSeconds: 60 });
        const wrong = await client.patch(url, 0, patternBytes(10), {
          'X-Lease-ID': other.leaseId,
          'X-Txn-ID': other.txnId,
          'X-Fencing-Token': String(other.fencingToken),
        });
        expect(wrong.status).toBe(403);
        expect(await client.offset(url)).toBe(0);
      });
    });

    describe('hostile and unlucky input', () => {
      it('answers 412 with Tus-Version to a request without Tus-Resumable or with another version', async () => {
        for (const version of [undefined, '0.2.2']) {
          const headers: Record<string, string> = { 'Upload-Length': '10', 'Upload-Metadata': tusMetadata({ filename: 'a' }) };
          if (version) headers['Tus-Resumable'] = version;
          const response = await fetch(`${server.baseUrl}/uploads`, { method: 'POST', headers });
          expect(response.status).toBe(412);
          expect(response.headers.get('Tus-Version')).toBe('1.0.0');
          expect(await response.json()).toMatchObject({ error: 'unsupported_tus_version' });
        }
      });

      it('refuses an Upload-Length above the server cap with 413 before storing anything', async () => {
        await server.close();
        await open({ maxBytes: 1_000 });
        const response = await client.create(1_001, { metadata: tusMetadata({ filename: 'a' }) });
        expect(response.status).toBe(413);
        expect(await response.json()).toMatchObject({ error: 'attachment_too_large' });
        expect((await client.create(1_000, { metadata: tusMetadata({ filename: 'a' }) })).status).toBe(201);
      });

      it('answers a PATCH at the wrong offset with 409 and appends nothing', async () => {
        const url = await client.createUrl(10);
        await client.patch(url, 0, patternBytes(4));
        for (const offset of [0, 3, 5]) {
          const response = await client.patch(url, offset, patternBytes(2));
          expect(response.status).toBe(409);
          expect(await response.json()).toMatchObject({ error: 'offset_mismatch' });
        }
        expect(await client.offset(url)).toBe(4);
      });

      it('answers a body that fails its Upload-Checksum with 460 and discards it; a matching one is kept', async () => {
        const bytes = patternBytes(1_000);
        const url = await client.createUrl(bytes.byteLength);
        const wrong = createHash('sha1').update(patternBytes(500, 99)).digest('base64');
        const refused = await client.patch(url, 0, bytes.subarray(0, 500), { 'Upload-Checksum': `sha1 ${wrong}` });
        expect(refused.status).toBe(460);
        expect(await refused.json()).toMatchObject({ error: 'upload_checksum_mismatch' });
        expect(await client.offset(url)).toBe(0);
        expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
        const right = createHash('sha256').update(bytes.subarray(0, 500)).digest('base64');
        expect((await client.patch(url, 0, bytes.subarray(0, 500), { 'Upload-Checksum': `sha256 ${right}` })).status).toBe(204);
        const crc = Buffer.alloc(4);
        crc.writeUInt32BE(crc32(bytes.subarray(500)) >>> 0);
        const last = await client.patch(url, 500, bytes.subarray(500), { 'Upload-Checksum': `crc32 ${crc.toString('base64')}` });
        expect(last.status).toBe(204);
        expectSameBytes(await download(server.baseUrl, last.headers.get('X-Attachment-ID')!), bytes);
      });

      it('refuses an unknown checksum algorithm or a malformed digest with 400', async () => {
        const url = await client.createUrl(10);
        for (const header of ['md5 AAAAAAAAAAAAAAAAAAAAAA==', 'sha1 not-base64', 'sha256 AAAA']) {
          const response = await client.patch(url, 0, patternBytes(10), { 'Upload-Checksum': header });
          expect(response.status).toBe(400);
          expect(await response.json()).toMatchObject({ error: 'invalid_body' });
        }
        expect(await client.offset(url)).toBe(0);
      });

      it('refuses bytes past Upload-Length with 413 and keeps none of them', async () => {
        const url = await client.createUrl(10);
        const response = await client.patch(url, 0, patternBytes(11));
        expect(response.status).toBe(413);
        expect(await client.offset(url)).toBe(0);
        expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
      });

      it('refuses a PATCH that is not application/offset+octet-stream with 415', async () => {
        const url = await client.createUrl(10);
        const response = await client.patch(url, 0, patternBytes(10), { 'Content-Type': 'application/octet-stream' });
        expect(response.status).toBe(415);
        expect(await response.json()).toMatchObject({ error: 'unsupported_media_type' });
      });

      it('refuses malformed creation requests with the documented codes', async () => {
        const cases: Array<[CreateOptions, number, string]> = [
          [{ metadata: 'filename !!!notbase64' }, 400, 'invalid_body'],
          [{ metadata: `${tusMetadata({ filename: 'a' })},${tusMetadata({ filename: 'b' })}` }, 400, 'invalid_body'],
          [{ metadata: tusMetadata({ filetype: 'text/plain' }) }, 400, 'missing_name'],
          [{ metadata: tusMetadata({ filename: '../x' }) }, 400, 'invalid_name'],
          [{ metadata: tusMetadata({ filename: 'a', filetype: 'not a type' }) }, 400, 'invalid_content_type'],
          [{ metadata: tusMetadata({ filename: 'a' }), query: '?key=k' }, 400, 'missing_lease'],
          [{ metadata: tusMetadata({ filename: 'a' }), query: '?bogus=1' }, 400, 'invalid_query'],
        ];
        for (const [options, status, code] of cases) {
          const response = await client.create(10, options);
          expect({ status: response.status, body: await response.json() }).toMatchObject({ status, body: { error: code } });
        }
        const noLength = await fetch(`${server.baseUrl}/uploads`, { method: 'POST', headers: TUS });
        expect(noLength.status).toBe(400);
        const deferred = await fetch(`${server.baseUrl}/uploads`, { method: 'POST', headers: { ...TUS, 'Upload-Defer-Length': '1' } });
        expect(deferred.status).toBe(400);
      });

      it('answers 404 for an unknown upload, and for a path that is not an upload id', async () => {
        for (const id of ['0190c4f0-0000-7000-8000-000000000000', 'not-an-id']) {
          expect((await client.head(`${server.baseUrl}/uploads/${id}`)).status).toBe(404);
          const response = await client.patch(`${server.baseUrl}/uploads/${id}`, 0, patternBytes(1));
          expect(response.status).toBe(404);
          expect(await response.json()).toMatchObject({ error: 'not_found' });
        }
      });

      it('lets one of two concurrent PATCHes at the same offset win; the other gets 409 and no bytes interleave', async () => {
        const size = 512 * 1024;
        const url = await client.createUrl(size);
        const bodies = [patternBytes(size, 1), patternBytes(size, 2)];
        // Both bodies trickle in, so both requests are under way at once.
        const trickle = (bytes: Uint8Array) =>
          new ReadableStream<Uint8Array>({
            start: async (controller) => {
              for (let at = 0; at < bytes.byteLength; at += 64 * 1024) {
                controller.enqueue(bytes.slice(at, at + 64 * 1024));
                await new Promise((resolve) => setTimeout(resolve, 10));
              }
              controller.close();
            },
          });
        const outcomes = await Promise.allSettled(
          bodies.map((bytes) =>
            fetch(url, {
              method: 'PATCH',
              headers: { ...TUS, ...OCTETS, 'Upload-Offset': '0' },
              body: trickle(bytes),
              duplex: 'half',
            } as RequestInit),
          ),
        );
        // The loser is answered (409) before its body is read; a host that closes such a
        // connection at once (@hono/node-server) may show the client a reset instead.
        const statuses = outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value.status : 'reset'));
        expect(statuses.filter((status) => status === 204)).toHaveLength(1);
        expect(statuses.filter((status) => status === 409 || status === 'reset')).toHaveLength(1);
        const winner = statuses.indexOf(204);
        const id = (outcomes[winner] as PromiseFulfilledResult<Response>).value.headers.get('X-Attachment-ID')!;
        expectSameBytes(await download(server.baseUrl, id), bodies[winner]);
        expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
      });

      it('forgets an expired upload with its bytes: the sweeper deletes them, and requests get 404', async () => {
        await server.close();
        await open({ uploadExpirySeconds: 60 });
        const swept = await client.createUrl(10);
        await client.patch(swept, 0, patternBytes(4));
        const asked = await client.createUrl(10);
        await client.patch(asked, 0, patternBytes(4));
        server.advance(61_000);
        // Asked before any sweep: refused at once, and its bytes go.
        expect((await client.patch(asked, 4, patternBytes(6))).status).toBe(404);
        const report = await server.store.sweep();
        expect(report.uploadsDeleted).toBe(1);
        expect(await blobPaths(server.blobs, 'uploads/')).toEqual([]);
        expect((await client.head(swept)).status).toBe(404);
      });

      it('resumes after a PATCH refused mid-upload: the offset is the last durable one', async () => {
        const bytes = patternBytes(20_000);
        const url = await client.createUrl(bytes.byteLength);
        await client.patch(url, 0, bytes.subarray(0, 8_000));
        // A late retry of the first chunk is refused and changes nothing.
        expect((await client.patch(url, 0, bytes.subarray(0, 8_000))).status).toBe(409);
        const last = await client.patch(url, await client.offset(url), bytes.subarray(8_000));
        expectSameBytes(await download(server.baseUrl, last.headers.get('X-Attachment-ID')!), bytes);
      });
    });
  });
}
