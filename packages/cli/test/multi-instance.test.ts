// Two `attache serve` processes (the built bin) sharing one PostgreSQL
// database and one blob store: once a shared directory, once one bucket on
// Ceph's RADOS Gateway (the run's shared cluster, a key prefix of its own). Everything a client sees goes over real HTTP; storage is inspected
// directly (the directory, the bucket, the database), never through the
// servers, so a check cannot be satisfied by the code under test lying.
import { request } from 'node:http';
import type { ClientRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { stagedTxnOf } from '@attache/core';
import { attacheS3Environment, createTestDatabase, describePostgres, describeRadosgw, type S3Connection, type TestDatabase } from '@attache/testing';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  acquire,
  assertBuilt,
  download,
  leaseHeaders,
  release,
  startServer,
  stopServer,
  upload,
  type LeaseHeaders,
  type RunningCli,
} from './process-helpers.js';

/** One blob store both instances use, plus direct views of what it holds. */
interface SharedBlobs {
  /** Environment that points `attache serve` at it. */
  env: Record<string, string>;
  /** `ATTACHE_DATA_DIR` of both instances. */
  dataDir: string;
  /** Every stored blob path under `state/`, sorted. */
  stateBlobs(): Promise<string[]>;
  /**
   * Writes that never finished, which live outside `state/`: temp files of the
   * fs store, incomplete multipart uploads in S3 (their keys).
   */
  unfinishedWrites(): Promise<string[]>;
  stop(): Promise<void>;
}

async function filesUnder(root: string, directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(root, path)));
    else files.push(relative(root, path));
  }
  return files.sort();
}

async function sharedDirectory(): Promise<SharedBlobs> {
  const dataDir = await mkdtemp(join(tmpdir(), 'attache-multi-fs-'));
  const root = join(dataDir, 'blobs');
  return {
    env: {},
    dataDir,
    stateBlobs: () => filesUnder(root, join(root, 'state')),
    unfinishedWrites: () => filesUnder(root, join(root, '.tmp')),
    stop: () => rm(dataDir, { recursive: true, force: true }),
  };
}

async function sharedBucket(server: S3Connection): Promise<SharedBlobs> {
  const prefix = `multi-${randomBytes(4).toString('hex')}/`;
  // Never created: with PostgreSQL and S3 the data directory must stay untouched.
  const dataDir = join(tmpdir(), `attache-multi-unused-${randomBytes(4).toString('hex')}`);
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials: server.credentials,
    forcePathStyle: true,
  });
  return {
    env: attacheS3Environment(server, prefix),
    dataDir,
    async stateBlobs() {
      const keys: string[] = [];
      let continuationToken: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}state/`, ContinuationToken: continuationToken }),
        );
        keys.push(...(page.Contents ?? []).map((object) => (object.Key ?? '').slice(prefix.length)));
        continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (continuationToken !== undefined);
      return keys.sort();
    },
    async unfinishedWrites() {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: prefix }));
      return (uploads.Uploads ?? []).map((upload) => (upload.Key ?? '').slice(prefix.length)).sort();
    },
    async stop() {
      client.destroy();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 100 ms until it returns true; fails after `timeoutMs`. */
async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<number> {
  const started = performance.now();
  for (let attempt = 0; performance.now() - started < timeoutMs; attempt++) {
    if (await probe()) return performance.now() - started;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function queryRows(databaseUrl: string, text: string, values: unknown[]): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function queryRow(databaseUrl: string, text: string, values: unknown[]): Promise<Record<string, unknown> | undefined> {
  return (await queryRows(databaseUrl, text, values))[0];
}

/** Every blob under `state/`: in the shared blob store, or (small ones, ATTACHE_INLINE_MAX_BYTES) in the shared database. */
async function allStateBlobs(blobs: SharedBlobs, databaseUrl: string): Promise<string[]> {
  const inline = await queryRows(databaseUrl, "select path from attache_blob_data where path like 'state/%'", []);
  return [...(await blobs.stateBlobs()), ...inline.map((row) => String(row.path))].sort();
}

async function leaseState(databaseUrl: string, lease: LeaseHeaders): Promise<{ lease: unknown; txn: unknown }> {
  const leaseRow = await queryRow(databaseUrl, 'select state from attache_leases where lease_id = $1', [lease.leaseId]);
  const txnRow = await queryRow(databaseUrl, 'select state from attache_txns where txn_id = $1', [lease.txnId]);
  return { lease: leaseRow?.state, txn: txnRow?.state };
}

async function listNames(url: string, key: string): Promise<string[]> {
  const response = await fetch(`${url}/v1/attachments?key=${encodeURIComponent(key)}&public=true`);
  expect(response.status).toBe(200);
  const body = (await response.json()) as { attachments: Array<{ name: string }> };
  return body.attachments.map((attachment) => attachment.name);
}

/**
 * A download as API.md asks clients to make it: `503 unavailable` (with
 * Retry-After) means "retry", e.g. while a just-committed blob is being moved
 * to its committed path. At most 5 attempts; every 503 is logged so a run
 * shows how often it happened.
 */
async function downloadRetrying(url: string, key: string, name: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const response = await download(url, key, name);
    if (response.status !== 503 || attempt === 5) return response;
    console.log(`download ${key}/${name}: 503 ${await response.text()} (attempt ${attempt}), retrying`);
    await sleep(1_000 * Number(response.headers.get('retry-after') ?? '1'));
  }
}

function percentile(sortedValues: readonly number[], fraction: number): number {
  const index = Math.min(sortedValues.length - 1, Math.ceil(fraction * sortedValues.length) - 1);
  return sortedValues[Math.max(0, index)] ?? Number.NaN;
}

/** Writes `bytes`, waiting for the socket to drain so "sent" means handed to the kernel. */
async function write(outgoing: ClientRequest, bytes: Uint8Array): Promise<void> {
  if (!outgoing.write(bytes)) {
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        outgoing.off('error', onError);
        resolve();
      };
      const onError = (error: Error) => {
        outgoing.off('drain', onDrain);
        reject(error);
      };
      outgoing.once('drain', onDrain);
      outgoing.once('error', onError);
    });
  }
}

const patternBytes = (size: number, seed: number) => new Uint8Array(size).map((_, index) => (index * 31 + seed) % 251);

beforeAll(() => {
  assertBuilt();
});

describePostgres('attache serve: two instances sharing PostgreSQL and a blob store', (serverUrl) => {
  for (const blobKind of ['shared directory', 'radosgw bucket'] as const) {
    // The bucket's block needs the run's radosgw (fails under CI without it).
    const describeBlobs = (name: string, body: (s3: S3Connection | undefined) => void) =>
      blobKind === 'shared directory' ? describe(name, () => body(undefined)) : describeRadosgw(name, body);
    describeBlobs(`blobs in one ${blobKind}`, (s3) => {
      let database: TestDatabase;
      let blobs: SharedBlobs;
      let a: RunningCli;
      let b: RunningCli;

      // A never sweeps during a test (first sweep after an hour), B every second:
      // whatever gets cleaned up without a request touching the key was B's sweeper.
      const startA = () => startServer(blobs.dataDir, { ...instanceEnv(), ATTACHE_SWEEP_INTERVAL_SECONDS: '3600' });
      const startB = () => startServer(blobs.dataDir, { ...instanceEnv(), ATTACHE_SWEEP_INTERVAL_SECONDS: '1' });
      const instanceEnv = () => ({ ATTACHE_DATABASE_URL: database.url, ...blobs.env });

      beforeAll(async () => {
        database = await createTestDatabase(serverUrl);
        blobs = s3 === undefined ? await sharedDirectory() : await sharedBucket(s3);
        // Started together: both migrate the fresh database at the same moment.
        [a, b] = await Promise.all([startA(), startB()]);
      }, 60_000);

      beforeEach(async () => {
        // The kill -9 scenario leaves A dead; later scenarios need it back.
        if (a.child.exitCode !== null || a.child.signalCode !== null) a = await startA();
      });

      afterAll(async () => {
        for (const server of [a, b]) {
          if (server !== undefined && server.child.exitCode === null && server.child.signalCode === null) {
            await stopServer(server);
          }
        }
        await blobs?.stop();
        await database?.drop();
      }, 60_000);

      it('grants one key to exactly one of 50 concurrent clients at a time, with fencing tokens 1..50 in acquisition order', async () => {
        const key = 'race/one-key';
        const clients = 50;
        const runStarted = performance.now();
        const holds = await Promise.all(
          Array.from({ length: clients }, async (_, index) => {
            const url = index % 2 === 0 ? a.url : b.url;
            const requestedAt = performance.now();
            const lease = await acquire(url, key, { ttlSeconds: 10, blockSeconds: 30, owner: `client-${index}` });
            const acquiredAt = performance.now();
            // The holder writes through its lease, so a second holder would also show as a rejected write.
            const uploaded = await upload(url, lease, `client-${index}.txt`, new TextEncoder().encode(`written by ${index}`));
            const uploadStatus = uploaded.status;
            await uploaded.body?.cancel();
            await sleep(3);
            const releaseSentAt = performance.now();
            const released = await release(url, lease);
            const releaseBody: unknown = await released.json();
            return {
              instance: url === a.url ? 'A' : 'B',
              fencingToken: Number(lease.fencingToken),
              requestedAt,
              acquiredAt,
              releaseSentAt,
              uploadStatus,
              releaseStatus: released.status,
              releaseBody,
            };
          }),
        );
        const totalMs = performance.now() - runStarted;

        for (const hold of holds) {
          expect(hold.uploadStatus).toBe(200);
          expect(hold.releaseStatus).toBe(200);
          expect(hold.releaseBody).toEqual({ released: true });
        }
        // A new key: every acquire incremented its token once.
        expect(holds.map((hold) => hold.fencingToken).sort((x, y) => x - y)).toEqual(
          Array.from({ length: clients }, (_, index) => index + 1),
        );
        const inAcquisitionOrder = [...holds].sort((x, y) => x.acquiredAt - y.acquiredAt);
        for (let index = 1; index < inAcquisitionOrder.length; index++) {
          const previous = inAcquisitionOrder[index - 1];
          const next = inAcquisitionOrder[index];
          if (previous === undefined || next === undefined) throw new Error('unreachable');
          expect(next.fencingToken).toBeGreaterThan(previous.fencingToken);
          // [acquire answered, release sent] lies inside the server's holding
          // interval, so two holders at once would make these overlap.
          expect(next.acquiredAt).toBeGreaterThanOrEqual(previous.releaseSentAt);
        }
        expect(new Set(holds.map((hold) => hold.instance))).toEqual(new Set(['A', 'B']));

        const expectedNames = Array.from({ length: clients }, (_, index) => `client-${index}.txt`).sort();
        expect(await listNames(a.url, key)).toEqual(expectedNames);
        expect(await listNames(b.url, key)).toEqual(expectedNames);

        const latencies = holds.map((hold) => hold.acquiredAt - hold.requestedAt).sort((x, y) => x - y);
        console.log(
          `[${blobKind}] ${clients} concurrent acquires over 2 instances: total ${totalMs.toFixed(0)} ms, ` +
            `acquire latency p50 ${percentile(latencies, 0.5).toFixed(0)} ms, p99 ${percentile(latencies, 0.99).toFixed(0)} ms, ` +
            `max ${percentile(latencies, 1).toFixed(0)} ms`,
        );
      }, 90_000);

      it('commits an upload staged through instance A when the lease is released through instance B', async () => {
        const key = 'handoff/report';
        const bytes = patternBytes(300_000, 7);
        const lease = await acquire(a.url, key);
        const uploaded = await upload(a.url, lease, 'report.bin', bytes);
        expect(uploaded.status).toBe(200);
        await uploaded.body?.cancel();

        // Staged: B shows it to the lease holder only.
        expect(await listNames(b.url, key)).toEqual([]);
        const throughLease = await fetch(`${b.url}/v1/attachments?key=${key}`, { headers: leaseHeaders(lease) });
        expect(((await throughLease.json()) as { attachments: Array<{ name: string }> }).attachments.map((x) => x.name)).toEqual([
          'report.bin',
        ]);
        // A lone part is written at its version's committed path, yet only the lease sees it.
        expect((await allStateBlobs(blobs, database.url)).filter((path) => path.startsWith(`state/default/${key}/attachments/`))).toHaveLength(1);

        const released = await release(b.url, lease);
        expect(released.status).toBe(200);
        expect(await released.json()).toEqual({ released: true });

        for (const server of [a, b]) {
          const downloaded = await downloadRetrying(server.url, key, 'report.bin');
          expect(downloaded.status).toBe(200);
          expect(new Uint8Array(await downloaded.arrayBuffer())).toEqual(bytes);
        }
        // At its committed path; nothing of the transaction in staging.
        await eventually('the blob to be at its committed path', async () => {
          const all = await allStateBlobs(blobs, database.url);
          const paths = all.filter((path) => path.startsWith(`state/default/${key}/`));
          return paths.length === 1 && paths[0]?.includes('/attachments/') === true && !all.some((path) => stagedTxnOf(path) === lease.txnId);
        });
      });

      it("rolls back a lease that expired on A through B's sweeper, without any request touching the key", async () => {
        const key = 'expiry/draft';
        const acquiredAt = performance.now();
        const lease = await acquire(a.url, key, { ttlSeconds: 1 });
        const uploaded = await upload(a.url, lease, 'draft.txt', new TextEncoder().encode('never committed'));
        expect(uploaded.status).toBe(200);
        await uploaded.body?.cancel();
        const keyBlobs = async () => (await allStateBlobs(blobs, database.url)).filter((path) => stagedTxnOf(path) === lease.txnId || path.startsWith(`state/default/${key}/`));
        expect(await keyBlobs()).toHaveLength(1);

        await eventually('the lease to be expired in the database', async () => {
          const state = await leaseState(database.url, lease);
          return state.lease === 'expired' && state.txn === 'rolled_back';
        });
        await eventually('the staged blob to be deleted', async () => (await keyBlobs()).length === 0);
        expect(performance.now() - acquiredAt).toBeGreaterThanOrEqual(1_000);

        // The holder learns its commit did not happen.
        const staleCommit = await release(b.url, lease);
        expect(staleCommit.status).toBe(403);
        expect(await staleCommit.json()).toMatchObject({ error: 'lease_expired' });
        // The key is free at once (no blocking), with the next fencing token.
        const next = await acquire(a.url, key);
        expect(next.fencingToken).toBe('2');
        expect(await listNames(b.url, key)).toEqual([]);
        expect((await release(a.url, next)).status).toBe(200);
      });

      it('leaves nothing visible and no blob under state/ after A is killed with SIGKILL mid-upload and B sweeps', async () => {
        const key = 'crash/upload';
        const unfinishedBefore = new Set(await blobs.unfinishedWrites());
        const lease = await acquire(a.url, key, { ttlSeconds: 3 });
        // A finished staged upload (its blob is under state/) and then one that A is killed in the middle of.
        const first = await upload(a.url, lease, 'first.txt', new TextEncoder().encode('staged before the crash'));
        expect(first.status).toBe(200);
        await first.body?.cancel();

        const declaredBytes = 64 * 1024 * 1024;
        const outgoing = request(`${a.url}/v1/attachments?key=${key}&name=big.bin`, {
          method: 'POST',
          agent: false,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(declaredBytes),
            ...leaseHeaders(lease),
          },
        });
        const outcome = new Promise<string>((resolve) => {
          outgoing.on('response', (response) => resolve(`response ${response.statusCode}`));
          outgoing.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
        });
        // Until the write is under way in storage: a temp file with bytes in it,
        // or (S3) a multipart upload, which starts once a part (8 MiB) is full.
        const chunk = patternBytes(1024 * 1024, 3);
        let sent = 0;
        const started = async () => {
          const unfinished = (await blobs.unfinishedWrites()).filter((entry) => !unfinishedBefore.has(entry));
          if (unfinished.length === 0) return false;
          if (blobKind === 'radosgw bucket') return true;
          const sizes = await Promise.all(unfinished.map((file) => stat(join(blobs.dataDir, 'blobs', file)).then((info) => info.size)));
          return sizes.some((size) => size > 0);
        };
        for (let mib = 0; mib < 32 && !(await started()); mib++) {
          await write(outgoing, chunk);
          sent += chunk.byteLength;
          await sleep(20);
        }
        expect(await started()).toBe(true);
        expect(sent).toBeLessThan(declaredBytes);

        a.child.kill('SIGKILL');
        expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
        expect(await outcome).toMatch(/^(ECONNRESET|EPIPE|socket hang up)$/);

        // Through B: nothing visible, neither the finished staged upload nor the partial one.
        expect(await listNames(b.url, key)).toEqual([]);
        expect((await download(b.url, key, 'first.txt')).status).toBe(404);
        expect((await download(b.url, key, 'big.bin')).status).toBe(404);

        await eventually("B's sweeper to expire the dead instance's lease", async () => {
          const state = await leaseState(database.url, lease);
          return state.lease === 'expired' && state.txn === 'rolled_back';
        });
        await eventually('zero blobs of the key or its transaction under state/', async () =>
          (await allStateBlobs(blobs, database.url)).every((path) => !path.startsWith(`state/default/${key}/`) && stagedTxnOf(path) !== lease.txnId),
        );

        // What a killed process leaves outside state/, which no attache
        // process can tell from a live write of another instance: the fs temp
        // file, or the incomplete multipart upload that the bucket's
        // AbortIncompleteMultipartUpload lifecycle rule exists for
        // (docs/deployment.md).
        const leftovers = (await blobs.unfinishedWrites()).filter((entry) => !unfinishedBefore.has(entry));
        if (blobKind === 'radosgw bucket') {
          // big.bin was the request's only part, so its object is at the version's committed path.
          expect(leftovers).toEqual([expect.stringContaining(`state/default/${key}/attachments/`)]);
        } else {
          expect(leftovers).toEqual([expect.stringMatching(/^\.tmp\/[0-9a-f-]+\.part$/)]);
        }

        const next = await acquire(b.url, key);
        expect(next.fencingToken).toBe('2');
        expect((await release(b.url, next)).status).toBe(200);
        expect(await listNames(b.url, key)).toEqual([]);
      }, 60_000);
    });
  }
});
