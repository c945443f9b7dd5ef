// tus-js-client (the reference client, from Node) against core's tus routes
// as every Node adapter (node, Express, Hono, NestJS) mounts them, on SQLite
// + file system; and two server instances sharing one PostgreSQL database and
// one blob directory: an upload started on one is resumed on the other.
// Connections are cut mid-upload by @attache/testing's cutting TCP proxy, as
// a flaky network would. (The Worker and Bun run the same scenario in their
// apps' tests.)
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestDatabase,
  cuttingProxy,
  describePostgres,
  digestsOf,
  DROP_DATABASES_TIMEOUT_MS,
  dropTestDatabases,
  expectAttachment,
  expectResumedAfterCut,
  MIB,
  patternBytes,
  tusUpload,
  type TestDatabase,
} from '@attache/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { mountOn, postgresStore, sqliteStore, type Adapter } from './tus-stacks.js';

/** A raw POST through node:http; resolves with the status once the answer was read. */
function postWithNodeHttp(url: string, body: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: 'POST', headers: { 'Content-Length': String(body.byteLength), 'Content-Type': 'application/octet-stream' } });
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', reject);
    request.end(body);
  });
}

describe('tus-js-client against every Node adapter, NestJS included (SQLite + fs)', () => {
  const adapters: Adapter[] = ['node', 'express', 'hono', 'nestjs'];
  for (const adapter of adapters) {
    it(`uploads 6 MiB through ${adapter}, survives a connection cut mid-upload, and the attachment's bytes, CRC-32 and SHA-256 are right`, async () => {
      const onDisk = sqliteStore();
      const mounted = await mountOn(adapter, onDisk.store);
      try {
        await expectResumedAfterCut(mounted.baseUrl, { size: 6 * MIB, cutAfterBytes: 3 * MIB });
      } finally {
        await mounted.close();
        await onDisk.close();
      }
    });
  }

  it('uploads in 1 MiB chunks into a lease transaction: staged at the last byte, published by the commit', async () => {
    const onDisk = sqliteStore();
    const mounted = await mountOn('express', onDisk.store);
    try {
      const lease = await onDisk.store.acquire({ key: 'videos/1', owner: 'tus-js-client', ttlSeconds: 60 });
      const file = patternBytes(3 * MIB + 12_345, 5);
      let stagedBeforeEnd = -1;
      const result = await tusUpload(file, {
        endpoint: `${mounted.baseUrl}/uploads?key=videos/1`,
        chunkSize: MIB,
        headers: { 'X-Lease-ID': lease.leaseId, 'X-Txn-ID': lease.txnId, 'X-Fencing-Token': String(lease.fencingToken) },
        metadata: { filename: 'clip.mp4', filetype: 'video/mp4' },
        // Awaited by tus-js-client before each request: before the last chunk, nothing is staged yet.
        onBeforeRequest: async (request) => {
          if (request.getMethod() === 'PATCH' && request.getHeader('Upload-Offset') === String(3 * MIB)) {
            stagedBeforeEnd = (await lease.list()).length;
          }
        },
      });
      expect(stagedBeforeEnd).toBe(0);
      expect(await lease.list()).toMatchObject([{ id: result.attachmentId, name: 'clip.mp4', contentType: 'video/mp4', ...digestsOf(file) }]);
      expect(await onDisk.store.listAttachments({ key: 'videos/1' })).toEqual([]);
      await lease.release();
      await expectAttachment(mounted.baseUrl, result.attachmentId, file);
    } finally {
      await mounted.close();
      await onDisk.close();
    }
  });

  it('measures bytes re-sent after a cut, and tus throughput against a plain POST of the same file', async () => {
    const onDisk = sqliteStore();
    const mounted = await mountOn('node', onDisk.store);
    const proxy = await cuttingProxy(mounted.baseUrl, 8 * MIB);
    try {
      const file = patternBytes(32 * MIB, 3);
      const resumed = await tusUpload(file, { endpoint: `${proxy.baseUrl}/uploads`, retryDelays: [0] });
      await expectAttachment(mounted.baseUrl, resumed.attachmentId, file);
      const overhead = proxy.bytesFromClient() - file.byteLength;

      const timings = { tus: [] as number[], post: [] as number[] };
      for (let round = 0; round < 3; round++) {
        let started = performance.now();
        const viaTus = await tusUpload(file, { endpoint: `${mounted.baseUrl}/uploads` });
        timings.tus.push(performance.now() - started);
        expect(viaTus.attachmentId).not.toBe('');
        started = performance.now();
        // node:http, as tus-js-client uses in Node: the two differ only in the protocol.
        expect(await postWithNodeHttp(`${mounted.baseUrl}/attachments?name=video.mp4`, file)).toBe(200);
        timings.post.push(performance.now() - started);
      }
      const median = (values: number[]) => [...values].sort((a, b) => a - b)[1]!;
      const mibPerSecond = (ms: number) => (file.byteLength / MIB / (ms / 1000)).toFixed(0);
      console.log(
        [
          `tus figures (SQLite + fs, @attache/node, loopback, ${file.byteLength / MIB} MiB file):`,
          `  cut after ${8} MiB on the wire; client sent ${proxy.bytesFromClient()} bytes in all = file + ${overhead} bytes (re-sent bytes + request headers)`,
          `  tus-js-client (one PATCH) median of 3: ${median(timings.tus).toFixed(0)} ms = ${mibPerSecond(median(timings.tus))} MiB/s`,
          `  plain POST /v1/attachments median of 3: ${median(timings.post).toFixed(0)} ms = ${mibPerSecond(median(timings.post))} MiB/s`,
        ].join('\n'),
      );
      expect(overhead).toBeLessThan(MIB);
    } finally {
      await proxy.close();
      await mounted.close();
      await onDisk.close();
    }
  }, 120_000);
});

describePostgres('tus-js-client on two instances sharing PostgreSQL', (serverUrl) => {
  const databases: TestDatabase[] = [];
  afterAll(() => dropTestDatabases(databases), DROP_DATABASES_TIMEOUT_MS);

  it('starts an upload on instance A, loses the connection, and finishes it on instance B', async () => {
    const database = await createTestDatabase(serverUrl);
    databases.push(database);
    const blobRoot = mkdtempSync(join(tmpdir(), 'attache-tus-shared-'));
    const a = postgresStore(database.url, { blobRoot });
    const b = postgresStore(database.url, { blobRoot });
    const onA = await mountOn('node', a.store);
    const onB = await mountOn('hono', b.store);
    const proxyToA = await cuttingProxy(onA.baseUrl, 2 * MIB);
    try {
      const file = patternBytes(5 * MIB, 23);
      let uploadUrl = '';
      // On A, without retries: the cut ends this client's attempt.
      await expect(
        tusUpload(file, { endpoint: `${proxyToA.baseUrl}/uploads`, retryDelays: null }, (url) => (uploadUrl = url)),
      ).rejects.toThrow();
      expect(proxyToA.cut()).toBe(true);
      expect(uploadUrl).not.toBe('');
      const path = new URL(uploadUrl).pathname;
      // B knows where the upload stands: A's durable offset, from the shared
      // database — once A has recorded the bytes of its cut request, which it
      // does after the cut (B cannot wait for another process's request).
      const offsetOnB = async () => {
        const head = await fetch(`${new URL(onB.baseUrl).origin}${path}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
        expect(head.status).toBe(200);
        return Number(head.headers.get('Upload-Offset'));
      };
      await expect.poll(offsetOnB, { timeout: 10_000 }).toBeGreaterThan(0);
      expect(await offsetOnB()).toBeLessThanOrEqual(2 * MIB);

      const finished = await tusUpload(file, { uploadUrl: `${new URL(onB.baseUrl).origin}${path}` });
      await expectAttachment(onA.baseUrl, finished.attachmentId, file);
      await expectAttachment(onB.baseUrl, finished.attachmentId, file);
    } finally {
      await proxyToA.close();
      await onA.close();
      await onB.close();
      await a.close();
      await b.close();
      rmSync(blobRoot, { recursive: true, force: true });
    }
  });
  it('lets exactly one of two PATCHes racing on two instances win; the loser is refused and no bytes interleave', async () => {
    const database = await createTestDatabase(serverUrl);
    databases.push(database);
    const blobRoot = mkdtempSync(join(tmpdir(), 'attache-tus-shared-'));
    const a = postgresStore(database.url, { blobRoot });
    const b = postgresStore(database.url, { blobRoot });
    const onA = await mountOn('node', a.store);
    const onB = await mountOn('node', b.store);
    try {
      const size = MIB;
      const created = await fetch(`${onA.baseUrl}/uploads`, {
        method: 'POST',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(size), 'Upload-Metadata': `filename ${btoa('race.bin')}` },
      });
      const path = new URL(created.headers.get('Location')!, onA.baseUrl).pathname;
      const bodies = [patternBytes(size, 31), patternBytes(size, 32)];
      // Both bodies trickle in, so both instances stream at once; only the offset's compare-and-set decides.
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
      const responses = await Promise.all(
        [onA, onB].map((instance, index) =>
          fetch(`${new URL(instance.baseUrl).origin}${path}`, {
            method: 'PATCH',
            headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
            body: trickle(bodies[index]!),
            duplex: 'half',
          } as RequestInit),
        ),
      );
      expect(responses.map((response) => response.status).sort()).toEqual([204, 409]);
      const winner = responses.findIndex((response) => response.status === 204);
      await expectAttachment(onB.baseUrl, responses[winner]!.headers.get('X-Attachment-ID')!, bodies[winner]!);
    } finally {
      await onA.close();
      await onB.close();
      await a.close();
      await b.close();
      rmSync(blobRoot, { recursive: true, force: true });
    }
  });
});
