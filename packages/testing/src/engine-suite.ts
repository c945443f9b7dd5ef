// The engine specification, run against every metadata + blob pairing
// (memory, SQLite + files, and later PostgreSQL + S3). Each scenario talks
// to `createAttachmentStore` exactly as a user would.
import {
  createAttachmentStore,
  inlineSmallBlobs,
  isAttacheError,
  newId,
  stagedBlobPath,
  stagedTxnOf,
  type Attachment,
  type AttachmentStore,
  type AttachmentStoreOptions,
  type BlobStore,
  type MetadataStore,
} from '@attache/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { expectCode, readAll, readText } from './expectations.js';
import { asIterable } from './parts.js';
import { describeSeedInterface } from './seed-suite.js';

export { expectCode, readAll, readText } from './expectations.js';

export interface EnginePorts {
  metadata: MetadataStore;
  blobs: BlobStore;
}

export interface EngineFixture {
  /** Fresh, empty ports. */
  create(): Promise<EnginePorts>;
  /** New port instances over the same storage (a process restart), when the backend persists. */
  reopen?(): Promise<EnginePorts>;
  /**
   * Whether two instances from `reopen()` can work at the same time in one
   * process, as two server processes would. Not so for better-sqlite3: its
   * calls are synchronous, so a connection waiting for another's write lock
   * blocks the very thread that would finish the other's transaction.
   */
  concurrentInstances?: boolean;
  /** Store options every scenario's store gets (e.g. `encryption`), under the scenario's own. */
  storeOptions?: Partial<AttachmentStoreOptions>;
}

/**
 * The same fixture with small blobs inline in its metadata store (core's
 * `inlineSmallBlobs`), wrapped around the fixture's blob store so the
 * scenarios see every blob, whichever side holds it. Bodies of the suite are
 * mostly a few bytes, so most blobs land inline and some (the larger ones)
 * still go to the blob store.
 */
export function withInlineBlobs(fixture: EngineFixture, maxBytes = 4096): EngineFixture {
  const wrap = async (opening: Promise<EnginePorts>): Promise<EnginePorts> => {
    const { metadata, blobs } = await opening;
    return { metadata, blobs: inlineSmallBlobs(blobs, metadata, { maxBytes, now: Date.now }) };
  };
  return {
    ...fixture,
    create: () => wrap(fixture.create()),
    ...(fixture.reopen ? { reopen: () => wrap(fixture.reopen!()) } : {}),
  };
}

/** Bound of the racing-release scenarios: 60 rounds of upload + two releases each. */
const RACE_TIMEOUT_MS = 120_000;

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

/** Every blob path under `state/`, sorted. */
export async function blobPaths(blobs: BlobStore): Promise<string[]> {
  const paths: string[] = [];
  for await (const blob of blobs.list('state/')) paths.push(blob.path);
  return paths.sort();
}

/** A body that records whether anyone read it. */
function watchedBody(text: string): { body: ReadableStream<Uint8Array>; wasRead: () => boolean } {
  let read = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      read = true;
      controller.enqueue(bytes(text));
      controller.close();
    },
  }, { highWaterMark: 0 });
  return { body, wasRead: () => read };
}

/**
 * Rounds of: one transaction over keys `a` and `b` (one upload each), then
 * both leases released at the same moment, one through each store. Both
 * must answer released (the loser's transaction did commit) and both
 * uploads must be committed.
 */
async function raceReleases(first: AttachmentStore, second: AttachmentStore, rounds: number): Promise<void> {
  const answers: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const a = await first.acquire({ key: `race/${round}/a`, ttlSeconds: 30, owner: 'o' });
    const b = await first.acquire({ key: `race/${round}/b`, ttlSeconds: 30, owner: 'o', txnId: a.txnId });
    await a.attach({ name: 'x', body: bytes('a') });
    await b.attach({ name: 'y', body: bytes('b') });
    const results = await Promise.allSettled([first.lease(a).release(), second.lease(b).release()]);
    for (const result of results) {
      answers.push(result.status === 'fulfilled' ? 'released' : String((result.reason as { code?: unknown }).code ?? result.reason));
    }
    expect((await first.listAttachments({ key: `race/${round}/a` })).map((x) => x.name), `round ${round}`).toEqual(['x']);
    expect((await second.listAttachments({ key: `race/${round}/b` })).map((x) => x.name), `round ${round}`).toEqual(['y']);
  }
  expect(answers.filter((answer) => answer !== 'released')).toEqual([]);
  expect(answers).toHaveLength(rounds * 2);
}

export function describeAttachmentEngine(name: string, fixture: EngineFixture): void {
  describe(`attachment engine on ${name}`, () => {
    let ports: EnginePorts;
    let store: AttachmentStore;
    let clock: number;
    const open = (extra: Partial<AttachmentStoreOptions> = {}) =>
      createAttachmentStore({ ...fixture.storeOptions, ...ports, sweepIntervalSeconds: 0, orphanGraceSeconds: 0, now: () => clock, ...extra });
    /** The blobs once the store's background work (promotion, garbage deletion) is done. */
    const settledBlobPaths = async () => {
      await store.settled();
      return blobPaths(ports.blobs);
    };

    beforeEach(async () => {
      clock = Date.now();
      ports = await fixture.create();
      store = open();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('lifecycle', () => {
      it('stages an upload under the lease and publishes it on release', async () => {
        const lease = await store.acquire({ key: 'orders/1', ttlSeconds: 30, owner: 'worker-1' });
        expect(lease.fencingToken).toBe(1);
        expect(lease.namespace).toBe('default');
        const { attachment, noop } = await lease.attach({ name: 'invoice.pdf', body: bytes('%PDF-1.7'), contentType: 'application/pdf' });
        expect(noop).toBe(false);
        expect(attachment).toMatchObject({ name: 'invoice.pdf', size: 8, contentType: 'application/pdf', extension: 'pdf', key: 'orders/1' });
        expect(attachment.crc32).toMatch(/^[0-9a-f]{8}$/);
        expect(attachment.updatedAt).toEqual(attachment.createdAt);
        expect(attachment.sha256).toMatch(/^[0-9a-f]{64}$/);

        expect((await lease.list()).map((a) => a.name)).toEqual(['invoice.pdf']);
        expect(await store.listAttachments({ key: 'orders/1' })).toEqual([]);
        await expectCode(store.getAttachment({ key: 'orders/1', name: 'invoice.pdf' }), 'attachment_not_found');

        await lease.release();
        const listed = await store.listAttachments({ key: 'orders/1' });
        expect(listed.map((a) => [a.name, a.id])).toEqual([['invoice.pdf', attachment.id]]);
        const opened = await store.openAttachment({ key: 'orders/1', name: 'invoice.pdf' });
        expect(await readText(opened.body)).toBe('%PDF-1.7');
        const byId = await store.openAttachment({ id: attachment.id });
        expect(await readText(byId.body)).toBe('%PDF-1.7');
      });

      it('computes the CRC-32 and SHA-256 of the bytes', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const { attachment } = await lease.attach({ name: 'hello.txt', body: bytes('hello world') });
        expect(attachment.crc32).toBe('0d4a1185');
        expect(attachment.sha256).toBe('b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
        expect(attachment.contentType).toBe('application/octet-stream');
      });

      it('reads a body given as a stream or an async iterable', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        async function* parts() {
          yield bytes('ab');
          yield bytes('cd');
        }
        await lease.attach({ name: 'iter', body: parts() });
        await lease.attach({ name: 'stream', body: new Blob(['xyz']).stream() });
        await lease.release();
        expect(await readText((await store.openAttachment({ key: 'k', name: 'iter' })).body)).toBe('abcd');
        expect(await readText((await store.openAttachment({ key: 'k', name: 'stream' })).body)).toBe('xyz');
      });

      it('lists attachments sorted by name, committed overlaid by the lease’s own writes', async () => {
        let lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'b', body: bytes('1') });
        await lease.attach({ name: 'a', body: bytes('1') });
        await lease.release();
        lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'c', body: bytes('22') });
        await lease.attach({ name: 'a', body: bytes('22') });
        await lease.delete({ name: 'b' });
        const view = await lease.list();
        expect(view.map((a) => [a.name, a.size])).toEqual([['a', 2], ['c', 2]]);
        const committed = await store.listAttachments({ key: 'k' });
        expect(committed.map((a) => [a.name, a.size])).toEqual([['a', 1], ['b', 1]]);
        expect((await lease.get({ name: 'a' })).size).toBe(2);
        await expectCode(lease.get({ name: 'b' }), 'attachment_not_found');
        expect(await readText((await lease.open({ name: 'c' })).body)).toBe('22');
      });
    });

    describe('release', () => {
      it('commits staged attachments and, in the background, moves them to the committed path', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attachAll(asIterable({ name: 'x', body: bytes('xx') }));
        expect((await settledBlobPaths()).some((p) => stagedTxnOf(p) !== undefined)).toBe(true);
        await lease.release();
        await store.settled();
        const paths = await settledBlobPaths();
        expect(paths).toHaveLength(1);
        expect(paths[0]).toMatch(/^state\/default\/k\/attachments\/[0-9a-f-]{36}$/);
      });

      it('writes a lone part straight to its committed path: the commit has nothing to promote, a rollback deletes it', async () => {
        const copies = vi.spyOn(ports.blobs, 'copy');
        const committing = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await committing.attach({ name: 'x', body: bytes('xx') });
        const [written] = await settledBlobPaths();
        expect(written).toMatch(/^state\/default\/k\/attachments\/[0-9a-f-]{36}$/);
        // Staged all the same: only the lease sees it before the commit.
        expect(await store.listAttachments({ key: 'k' })).toEqual([]);
        await committing.release();
        await store.settled();
        expect(await settledBlobPaths()).toEqual([written]);
        expect(copies).not.toHaveBeenCalled();
        expect(await readText((await store.openAttachment({ key: 'k', name: 'x' })).body)).toBe('xx');

        const rollingBack = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await rollingBack.attach({ name: 'x', body: bytes('yy') });
        expect(await settledBlobPaths()).toHaveLength(2);
        await rollingBack.release({ rollback: true });
        await store.settled();
        expect(await settledBlobPaths()).toEqual([written]);
        expect(await readText((await store.openAttachment({ key: 'k', name: 'x' })).body)).toBe('xx');
        copies.mockRestore();
      });

      it('keeps the time the bytes were written as updatedAt, and the first version’s createdAt', async () => {
        let lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const first = await lease.attach({ name: 'a', body: bytes('1') });
        clock += 5_000;
        await lease.release();
        const committed = await store.getAttachment({ key: 'k', name: 'a' });
        expect(committed.updatedAt).toEqual(first.attachment.updatedAt);
        lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        clock += 5_000;
        const second = await lease.attach({ name: 'a', body: bytes('2') });
        await lease.release();
        const replaced = await store.getAttachment({ key: 'k', name: 'a' });
        expect(replaced.createdAt).toEqual(first.attachment.createdAt);
        expect(replaced.updatedAt).toEqual(second.attachment.updatedAt);
        expect(replaced.updatedAt.getTime() - replaced.createdAt.getTime()).toBe(10_000);
      });

      it('is idempotent: a commit replayed answers released again, and so does a rollback', async () => {
        const committed = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await expect(committed.release()).resolves.toEqual({ released: true });
        await expect(committed.release()).resolves.toEqual({ released: true });
        const rolledBack = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await expect(rolledBack.release({ rollback: true })).resolves.toEqual({ released: true });
        await expect(rolledBack.release({ rollback: true })).resolves.toEqual({ released: true });
      });

      it('refuses a commit after the lease’s transaction was rolled back, with txn_rolled_back', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'x', body: bytes('x') });
        await lease.release({ rollback: true });
        await expectCode(lease.release(), 'txn_rolled_back');
        expect(await store.listAttachments({ key: 'k' })).toEqual([]);
      });

      it('refuses to commit a key whose transaction another key rolled back, keeping nothing (txn_rolled_back)', async () => {
        const a = await store.acquire({ key: 'mk/a', ttlSeconds: 30, owner: 'o' });
        const b = await store.acquire({ key: 'mk/b', ttlSeconds: 30, owner: 'o', txnId: a.txnId });
        await a.attach({ name: 'x', body: bytes('x') });
        await b.attach({ name: 'y', body: bytes('y') });
        await expect(a.release({ rollback: true })).resolves.toEqual({ released: true });
        await expectCode(b.release(), 'txn_rolled_back');
        expect(await store.listAttachments({ key: 'mk/a' })).toEqual([]);
        expect(await store.listAttachments({ key: 'mk/b' })).toEqual([]);
        await expect(b.release({ rollback: true })).resolves.toEqual({ released: true });
      });

      it('refuses a rollback after the transaction committed, with txn_committed, and keeps the commit', async () => {
        const a = await store.acquire({ key: 'mk/a', ttlSeconds: 30, owner: 'o' });
        const b = await store.acquire({ key: 'mk/b', ttlSeconds: 30, owner: 'o', txnId: a.txnId });
        await b.attach({ name: 'y', body: bytes('y') });
        await a.release();
        await expectCode(b.release({ rollback: true }), 'txn_committed');
        await expectCode(a.release({ rollback: true }), 'txn_committed');
        expect((await store.listAttachments({ key: 'mk/b' })).map((x) => x.name)).toEqual(['y']);
        await expect(b.release()).resolves.toEqual({ released: true });
      });

      it('checks the credentials of a replayed release: fencing_mismatch, txn_mismatch', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const ids = { key: 'k', leaseId: lease.leaseId, txnId: lease.txnId, fencingToken: lease.fencingToken };
        await lease.release();
        await expectCode(store.lease({ ...ids, fencingToken: lease.fencingToken + 1 }).release(), 'fencing_mismatch');
        await expectCode(store.lease({ ...ids, txnId: 'bogus-txn' }).release(), 'txn_mismatch');
        await expectCode(store.lease({ ...ids, leaseId: 'nope' }).release(), 'lease_required');
        await expect(store.lease(ids).release()).resolves.toEqual({ released: true });
        const rolledBack = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await rolledBack.release({ rollback: true });
        const again = { key: 'k', leaseId: rolledBack.leaseId, txnId: rolledBack.txnId, fencingToken: rolledBack.fencingToken };
        await expectCode(store.lease({ ...again, fencingToken: 1 }).release({ rollback: true }), 'fencing_mismatch');
        await expectCode(store.lease({ ...again, txnId: 'bogus-txn' }).release({ rollback: true }), 'txn_mismatch');
      });

      it('answers a rollback replayed on an expired transaction with released, a commit with lease_expired', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'o' });
        clock += 6_000;
        await store.sweep();
        await expect(lease.release({ rollback: true })).resolves.toEqual({ released: true });
        await expectCode(lease.release(), 'lease_expired');
        await expectCode(store.lease({ key: 'k', leaseId: lease.leaseId, txnId: 'bogus-txn' }).release({ rollback: true }), 'txn_mismatch');
      });

      // 60 rounds take 2–9 s on an idle machine (PostgreSQL + S3 the slowest);
      // the bound is for a loaded one, where they outlasted vitest's 30 s.
      it('answers both of two racing releases of one multi-key transaction with released (60 rounds, all committed)', { timeout: RACE_TIMEOUT_MS }, async () => {
        await raceReleases(store, store, 60);
      });

      it.skipIf(!fixture.reopen || !fixture.concurrentInstances)('answers both racing releases when they run on two stores over the same storage', { timeout: RACE_TIMEOUT_MS }, async () => {
        const second = open(await fixture.reopen!());
        try {
          await raceReleases(store, second, 60);
        } finally {
          await second.close();
        }
      });

      it('with rollback discards staged writes, blobs included', async () => {
        let lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'keep', body: bytes('1') });
        await lease.release();
        lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'keep', body: bytes('changed') });
        await lease.attach({ name: 'new', body: bytes('2') });
        await lease.delete({ name: 'keep' });
        await lease.release({ rollback: true });
        const committed = await store.listAttachments({ key: 'k' });
        expect(committed.map((a) => [a.name, a.size])).toEqual([['keep', 1]]);
        const paths = await settledBlobPaths();
        expect(paths.filter((p) => stagedTxnOf(p) !== undefined)).toEqual([]);
        expect(paths).toHaveLength(1);
      });

      it('commits every key of a shared transaction together', async () => {
        const a = await store.acquire({ key: 'a', ttlSeconds: 30, owner: 'o' });
        const b = await store.acquire({ key: 'b', ttlSeconds: 30, owner: 'o', txnId: a.txnId });
        expect(b.txnId).toBe(a.txnId);
        await a.attach({ name: 'f', body: bytes('a') });
        await b.attach({ name: 'f', body: bytes('b') });
        await b.release();
        expect((await store.listAttachments({ key: 'a' })).map((x) => x.name)).toEqual(['f']);
        expect((await store.listAttachments({ key: 'b' })).map((x) => x.name)).toEqual(['f']);
        // Both leases ended: both keys are free again.
        await store.acquire({ key: 'a', ttlSeconds: 30, owner: 'p' });
        await expect(a.release()).resolves.toEqual({ released: true });
      });

      it('refuses to commit an expired lease, and rolls it back', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'o' });
        await lease.attach({ name: 'x', body: bytes('x') });
        clock += 6_000;
        await expectCode(lease.release(), 'lease_expired');
        await expect(lease.release({ rollback: true })).resolves.toEqual({ released: true });
        expect(await store.listAttachments({ key: 'k' })).toEqual([]);
        expect(await settledBlobPaths()).toEqual([]);
      });
    });

    describe('leases', () => {
      it('increments the fencing token on every acquire', async () => {
        const first = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await first.release();
        const second = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        expect(second.fencingToken).toBe(first.fencingToken + 1);
      });

      it('answers waiting with a retry time while another lease holds the key', async () => {
        await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const error = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'p' }).catch((e: unknown) => e);
        expect(isAttacheError(error, 'waiting')).toBe(true);
        expect((error as { retryAfterSeconds: number }).retryAfterSeconds).toBe(30);
      });

      it('blocks until the holder releases, then acquires', async () => {
        const realStore = open({ now: Date.now });
        try {
          const holder = await realStore.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
          const started = Date.now();
          const waiting = realStore.acquire({ key: 'k', ttlSeconds: 30, owner: 'p', blockSeconds: 5 });
          setTimeout(() => void holder.release(), 150);
          const next = await waiting;
          expect(Date.now() - started).toBeGreaterThanOrEqual(100);
          expect(next.fencingToken).toBe(holder.fencingToken + 1);
        } finally {
          await realStore.close().catch(() => {});
        }
      });

      it('gives up blocking after block_seconds with waiting', async () => {
        const realStore = open({ now: Date.now });
        await realStore.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const started = Date.now();
        await expectCode(realStore.acquire({ key: 'k', ttlSeconds: 30, owner: 'p', blockSeconds: 1 }), 'waiting');
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      });

      it('rejects a stale fencing token and an older lease', async () => {
        const old = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'o' });
        clock += 6_000;
        const current = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'p' });
        await expectCode(old.attach({ name: 'x', body: bytes('x') }), 'fencing_mismatch');
        const forged = store.lease({ key: 'k', leaseId: current.leaseId, txnId: current.txnId, fencingToken: old.fencingToken });
        await expectCode(forged.attach({ name: 'x', body: bytes('x') }), 'fencing_mismatch');
      });

      it('checks lease credentials in the documented order', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const ids = { key: 'k', leaseId: lease.leaseId, txnId: lease.txnId, fencingToken: lease.fencingToken };
        await expectCode(store.lease({ ...ids, leaseId: 'nope' }).list(), 'lease_required');
        await expectCode(store.lease({ ...ids, key: 'other' }).list(), 'lease_required');
        await expectCode(store.lease({ ...ids, txnId: 'other' }).list(), 'txn_mismatch');
        await expectCode(store.lease({ ...ids, fencingToken: 99 }).list(), 'fencing_mismatch');
        await lease.release();
        await expectCode(store.lease(ids).list(), 'lease_required');
      });

      it('extends the expiry with keepalive', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'o' });
        clock += 4_000;
        const renewed = await lease.keepalive({ ttlSeconds: 5 });
        expect(renewed.expiresAt.getTime()).toBe(clock + 5_000);
        clock += 4_000;
        await expect(lease.list()).resolves.toEqual([]);
      });

      it('rolls back an expired lease on the next access', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'o' });
        await lease.attach({ name: 'x', body: bytes('x') });
        clock += 6_000;
        await expectCode(lease.list(), 'lease_expired');
        expect(await settledBlobPaths()).toEqual([]);
        await expectCode(lease.keepalive({ ttlSeconds: 5 }), 'lease_expired');
        const next = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'p' });
        expect(await next.list()).toEqual([]);
      });

      it('rolls back an expired lease in the sweeper', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'o' });
        await lease.attach({ name: 'x', body: bytes('x') });
        clock += 6_000;
        const report = await store.sweep();
        expect(report.rolledBackTxns).toBe(1);
        expect(await settledBlobPaths()).toEqual([]);
        await expectCode(lease.list(), 'lease_expired');
      });

      it('validates acquire input', async () => {
        await expectCode(store.acquire({ key: '', ttlSeconds: 30, owner: 'o' }), 'missing_key');
        await expectCode(store.acquire({ key: 'A', ttlSeconds: 30, owner: 'o' }), 'invalid_key');
        await expectCode(store.acquire({ key: 'a/../b', ttlSeconds: 30, owner: 'o' }), 'invalid_key');
        await expectCode(store.acquire({ key: 'a/.staging/b', ttlSeconds: 30, owner: 'o' }), 'invalid_key');
        await expectCode(store.acquire({ namespace: 'Bad', key: 'k', ttlSeconds: 30, owner: 'o' }), 'invalid_namespace');
        await expectCode(store.acquire({ namespace: '.', key: 'k', ttlSeconds: 30, owner: 'o' }), 'invalid_namespace');
        await expectCode(store.acquire({ namespace: '..', key: 'k', ttlSeconds: 30, owner: 'o' }), 'invalid_namespace');
        await expectCode(store.acquire({ key: 'k', ttlSeconds: 0, owner: 'o' }), 'invalid_argument');
        await expectCode(store.acquire({ key: 'k', ttlSeconds: 30, owner: '' }), 'invalid_argument');
        await expectCode(store.acquire({ key: 'k', ttlSeconds: 30, owner: '  ' }), 'invalid_argument');
        await expectCode(store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o', blockSeconds: -2 }), 'invalid_argument');
        await expectCode(store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o', txnId: '../x' }), 'invalid_argument');
      });

      it('names the TypeScript fields in its argument errors (ttlSeconds, blockSeconds, txnId), not the HTTP ones', async () => {
        const messageOf = (promise: Promise<unknown>) => promise.then(() => '', (error: unknown) => (error as Error).message);
        expect(await messageOf(store.acquire({ key: 'k', ttlSeconds: 604_801, owner: 'o' }))).toBe(
          'ttlSeconds must be a number from 0.001 (1 ms) to 604800 (7 days)',
        );
        expect(await messageOf(store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o', blockSeconds: 0.5 }))).toMatch(/^blockSeconds must be/);
        expect(await messageOf(store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o', txnId: 'a b' }))).toMatch(/^txnId must be/);
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await expectCode(lease.keepalive({ ttlSeconds: -1 }), 'invalid_argument');
        expect(await messageOf(lease.keepalive({ ttlSeconds: Number.NaN }))).toMatch(/^ttlSeconds must be/);
        await expectCode(lease.attachAll([]), 'invalid_argument');
        await expectCode(store.createDocuments([]), 'invalid_argument');
        await lease.release();
      });

      it('caps owner at 256 characters (code points) with invalid_argument', async () => {
        const longest = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o'.repeat(256) });
        expect(longest.owner).toHaveLength(256);
        await longest.release();
        const astral = await store.acquire({ key: 'k', ttlSeconds: 30, owner: '\u{1F600}'.repeat(256) });
        await astral.release();
        await expectCode(store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o'.repeat(257) }), 'invalid_argument');
        await expectCode(store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o'.repeat(60_000) }), 'invalid_argument');
      });
    });

    describe('attach', () => {
      it('with preventOverwrite returns the existing attachment without reading the body', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const first = await lease.attach({ name: 'a', body: bytes('first') });
        const watched = watchedBody('second');
        const again = await lease.attach({ name: 'a', body: watched.body, preventOverwrite: true });
        expect(again.noop).toBe(true);
        expect(again.attachment).toEqual(first.attachment);
        expect(watched.wasRead()).toBe(false);
      });

      it('overwriting a name keeps its id', async () => {
        let lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const first = await lease.attach({ name: 'a', body: bytes('first') });
        await lease.release();
        lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const second = await lease.attach({ name: 'a', body: bytes('second!') });
        expect(second.attachment.id).toBe(first.attachment.id);
        await lease.release();
        const committed = await store.getAttachment({ key: 'k', name: 'a' });
        expect(committed).toMatchObject({ id: first.attachment.id, size: 7 });
        expect(committed.createdAt.getTime()).toBe(first.attachment.createdAt.getTime());
        expect(await settledBlobPaths()).toHaveLength(1);
      });

      it('aborts past maxBytes with attachment_too_large and keeps nothing', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await expectCode(lease.attach({ name: 'big', body: bytes('1234567'), maxBytes: 3 }), 'attachment_too_large');
        expect(await lease.list()).toEqual([]);
        expect(await settledBlobPaths()).toEqual([]);
      });

      it('caps maxBytes at the store limit', async () => {
        const small = open({ maxBytes: 4 });
        const lease = await small.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await expectCode(lease.attach({ name: 'big', body: bytes('12345'), maxBytes: 100 }), 'attachment_too_large');
        await expect(lease.attach({ name: 'ok', body: bytes('1234') })).resolves.toBeDefined();
        await expectCode(lease.attach({ name: 'x', body: bytes('1'), maxBytes: -1 }), 'invalid_max_bytes');
      });

      it('verifies expected checksums and size, keeping nothing on mismatch', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await expectCode(lease.attach({ name: 'a', body: bytes('hello world'), expectedCrc32: '00000000' }), 'checksum_mismatch');
        await expectCode(lease.attach({ name: 'a', body: bytes('hello world'), expectedSha256: '0'.repeat(64) }), 'checksum_mismatch');
        await expectCode(lease.attach({ name: 'a', body: bytes('hello world'), expectedSize: 3 }), 'size_mismatch');
        await expectCode(lease.attach({ name: 'a', body: bytes('hello world'), expectedSize: 30 }), 'size_mismatch');
        await expect(
          lease.attach({ name: 'a', body: bytes('hello world'), expectedCrc32: '0D4A1185', expectedSize: 11 }),
        ).resolves.toMatchObject({ noop: false });
        expect((await lease.list()).map((a) => a.name)).toEqual(['a']);
        expect(await settledBlobPaths()).toHaveLength(1);
      });

      it('rejects invalid names', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        for (const bad of ['a/b', 'a\\b', '..', '.', 'a\u0000b', 'a\nb', 'x'.repeat(256)]) {
          await expectCode(lease.attach({ name: bad, body: bytes('x') }), 'invalid_name');
        }
        await expectCode(lease.attach({ name: '', body: bytes('x') }), 'missing_name');
        await expect(lease.attach({ name: 'résumé ✓.txt', body: bytes('x') })).resolves.toBeDefined();
      });

      it('stages several parts all or nothing', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const failing = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(bytes('partial'));
            controller.error(new Error('client went away'));
          },
        });
        await expect(
          lease.attachAll([
            { name: 'one', body: bytes('1') },
            { name: 'two', body: failing },
          ]),
        ).rejects.toThrow('client went away');
        expect(await lease.list()).toEqual([]);
        expect(await settledBlobPaths()).toEqual([]);
        const result = await lease.attachAll([
          { name: 'one', body: bytes('1') },
          { name: 'two', body: bytes('2') },
        ]);
        expect(result.attachments.map((a) => a.name)).toEqual(['one', 'two']);
      });
    });

    describe('delete', () => {
      it('stages deletes until release', async () => {
        let lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const a = await lease.attach({ name: 'a', body: bytes('a') });
        await lease.attach({ name: 'b', body: bytes('b') });
        await lease.attach({ name: 'c', body: bytes('c') });
        await lease.release();
        lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        expect(await lease.delete({ id: a.attachment.id })).toEqual({ deleted: true });
        expect(await lease.delete({ name: 'missing' })).toEqual({ deleted: false });
        expect((await store.listAttachments({ key: 'k' })).map((x) => x.name)).toEqual(['a', 'b', 'c']);
        await lease.release();
        expect((await store.listAttachments({ key: 'k' })).map((x) => x.name)).toEqual(['b', 'c']);
        await expectCode(store.getAttachment({ id: a.attachment.id }), 'attachment_not_found');
        expect(await settledBlobPaths()).toHaveLength(2);
      });

      it('deleteAll removes committed and staged attachments on release', async () => {
        let lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'a', body: bytes('a') });
        await lease.release();
        lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'b', body: bytes('b') });
        expect(await lease.deleteAll()).toEqual({ deleted: 2 });
        expect(await lease.list()).toEqual([]);
        expect((await store.listAttachments({ key: 'k' })).map((x) => x.name)).toEqual(['a']);
        await lease.release();
        expect(await store.listAttachments({ key: 'k' })).toEqual([]);
        expect(await settledBlobPaths()).toEqual([]);
      });

      it('unstage takes back a staged write or delete, showing the committed version again', async () => {
        let lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'a', body: bytes('committed') });
        await lease.release();
        lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'a', body: bytes('staged') });
        await lease.attach({ name: 'b', body: bytes('new') });
        expect(await lease.unstage({ name: 'a' })).toEqual({ unstaged: true });
        expect(await lease.unstage({ name: 'b' })).toEqual({ unstaged: true });
        expect(await lease.unstage({ name: 'b' })).toEqual({ unstaged: false });
        expect((await lease.list()).map((x) => [x.name, x.size])).toEqual([['a', 9]]);
        await lease.delete({ name: 'a' });
        expect(await lease.list()).toEqual([]);
        expect(await lease.unstage({ name: 'a' })).toEqual({ unstaged: true });
        await lease.release();
        expect((await store.listAttachments({ key: 'k' })).map((x) => [x.name, x.size])).toEqual([['a', 9]]);
        expect(await settledBlobPaths()).toHaveLength(1);
      });

      it('a write after a staged delete of the same name wins', async () => {
        let lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        const first = await lease.attach({ name: 'a', body: bytes('1') });
        await lease.release();
        lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.delete({ name: 'a' });
        await lease.attach({ name: 'a', body: bytes('22') });
        await lease.release();
        expect(await store.getAttachment({ key: 'k', name: 'a' })).toMatchObject({ id: first.attachment.id, size: 2 });
      });
    });

    describe('reads', () => {
      it('serves byte ranges, inclusive, and refuses a start past the end', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'a', body: bytes('0123456789') });
        await lease.release();
        const read = async (range: { start: number; end?: number }) =>
          readText((await store.openAttachment({ key: 'k', name: 'a' }, { range })).body);
        expect(await read({ start: 0, end: 0 })).toBe('0');
        expect(await read({ start: 2, end: 4 })).toBe('234');
        expect(await read({ start: 7 })).toBe('789');
        expect(await read({ start: 8, end: 100 })).toBe('89');
        await expectCode(store.openAttachment({ key: 'k', name: 'a' }, { range: { start: 10 } }), 'range_not_satisfiable');
      });

      it('requires a key unless reading by id', async () => {
        await expectCode(store.getAttachment({ key: 'k', name: 'nope' }), 'attachment_not_found');
        await expectCode(store.getAttachment({ id: 'not-a-uuid' }), 'attachment_not_found');
        await expectCode(store.listAttachments({ key: '' }), 'missing_key');
      });
    });

    // The seed interface alone runs in seed-suite.ts, shared with @attache/client.
    describeSeedInterface(name, {
      async open() {
        const seedPorts = await fixture.create();
        const seedStore = createAttachmentStore({ ...fixture.storeOptions, ...seedPorts, sweepIntervalSeconds: 0, orphanGraceSeconds: 0 });
        return {
          store: seedStore,
          blobPaths: async () => {
            await seedStore.settled();
            return blobPaths(seedPorts.blobs);
          },
          close: () => seedStore.close(),
        };
      },
      explicitExtension: true,
    });

    describeEncryptionScenarios(() => ({ ports, store, open }));

    describe('documents', () => {
      it('refuses to lease a document’s key with document_key, whatever its namespace', async () => {
        const handle = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 1 });
        const writer = handle.sink.getWriter();
        await writer.write(bytes('a'));
        await writer.close();
        await handle.done;
        await expectCode(store.acquire({ key: handle.attachmentId, ttlSeconds: 30, owner: 'o' }), 'document_key');
        const [other] = await store.createDocuments([{ name: 'b.txt', body: bytes('b') }], { namespace: 'other' });
        expect(other).toMatchObject({ namespace: 'other', key: other!.id });
        await expectCode(store.acquire({ namespace: 'other', key: other!.id, ttlSeconds: 30, owner: 'o' }), 'document_key');
        // The same id in another namespace is an ordinary key.
        const lease = await store.acquire({ key: other!.id, ttlSeconds: 30, owner: 'o' });
        await lease.release();
        expect(await readText((await store.openAttachment({ id: other!.id })).body)).toBe('b');
        await expectCode(store.createDocuments([{ name: 'c', body: bytes('c') }], { namespace: 'Bad' }), 'invalid_namespace');
      });

      it('takes a caller-chosen UUIDv7 id; a malformed one is invalid_ref, a taken one attachment_exists, and nothing is kept', async () => {
        const id = newId();
        const [document] = await store.createDocuments([{ id, name: 'chosen.txt', body: bytes('c') }]);
        expect(document).toMatchObject({ id, key: id, namespace: 'default' });
        await expectCode(store.createDocuments([{ id, name: 'again.txt', body: bytes('x') }]), 'attachment_exists');
        await expectCode(store.createDocuments([{ id, name: 'again.txt', body: bytes('x') }], { namespace: 'other' }), 'attachment_exists');
        // A key that holds attachments is taken too, though none has that id.
        const keyId = newId();
        const lease = await store.acquire({ key: keyId, ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'k.txt', body: bytes('k') });
        await lease.release();
        await expectCode(store.createDocuments([{ id: keyId, name: 'doc.txt', body: bytes('d') }]), 'attachment_exists');
        for (const malformed of ['nope', id.toUpperCase(), '0199aaaa-0000-4000-8000-000000000000', `${id}/x`]) {
          await expectCode(store.createDocuments([{ id: malformed, name: 'm.txt', body: bytes('m') }]), 'invalid_ref');
        }
        expect(await readText((await store.openAttachment({ id })).body)).toBe('c');
        expect((await store.listAttachments({ key: id })).map((a) => a.name)).toEqual(['chosen.txt']);
        expect((await store.listAttachments({ key: keyId })).map((a) => a.name)).toEqual(['k.txt']);
      });

      it('gives a chosen id to one of two concurrent creates in two namespaces; the other is attachment_exists', async () => {
        for (let round = 0; round < 5; round++) {
          const id = newId();
          const outcomes = await Promise.allSettled([
            store.createDocuments([{ id, name: 'a.txt', body: bytes('a') }]),
            store.createDocuments([{ id, name: 'b.txt', body: bytes('b') }], { namespace: 'other' }),
          ]);
          expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
          const refused = outcomes.find((outcome) => outcome.status === 'rejected');
          expect((refused as PromiseRejectedResult).reason).toMatchObject({ code: 'attachment_exists' });
          const winner = await store.getAttachment({ id });
          const loser = winner.namespace === 'default' ? 'other' : 'default';
          expect(await store.listAttachments({ namespace: loser, key: id })).toEqual([]);
        }
      });

      it('keeps every lease of a create alive while a later document streams for longer than the lease time', async () => {
        const slow = open({ documentLeaseSeconds: 5 });
        try {
          let chunks = 0;
          // Each chunk takes two seconds of the store's clock: 20 s in all, four lease times.
          const later = new ReadableStream<Uint8Array>({
            pull(controller) {
              if (chunks === 10) return controller.close();
              chunks += 1;
              clock += 2_000;
              controller.enqueue(bytes('0123456789'));
            },
          });
          const id = newId();
          const created = await slow.createDocuments([
            { id, name: 'first.txt', body: bytes('first') },
            { name: 'later.bin', body: later },
          ]);
          expect(created.map((document) => document.size)).toEqual([5, 100]);
          expect(await readText((await slow.openAttachment({ id })).body)).toBe('first');
          expect((await slow.getAttachment({ id: created[1]!.id })).size).toBe(100);
        } finally {
          await slow.close();
        }
      });

      it('deletes a document with deleteDocument, and nothing else', async () => {
        const [document] = await store.createDocuments([{ name: 'd.txt', body: bytes('d') }]);
        const lease = await store.acquire({ key: 'keyed', ttlSeconds: 30, owner: 'o' });
        const { attachment: keyed } = await lease.attach({ name: 'k.txt', body: bytes('k') });
        await lease.release();
        expect(await store.deleteDocument(keyed.id)).toEqual({ deleted: false });
        expect(await store.deleteDocument('0199aaaa-0000-7000-8000-000000000000')).toEqual({ deleted: false });
        expect(await store.deleteDocument(document!.id)).toEqual({ deleted: true });
        await expectCode(store.stat(document!.id), 'attachment_not_found');
        expect((await store.listAttachments({ key: 'keyed' })).map((a) => a.name)).toEqual(['k.txt']);
      });
    });

    describe('sweep', () => {
      it('leaves no orphans after a restart with staged data', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'o' });
        await lease.attach({ name: 'staged', body: bytes('staged') });
        // An orphan from an upload that died before its row was written.
        await ports.blobs.put(stagedBlobPath(lease.txnId, '0190b6e0-0000-7000-8000-000000000001'), new Blob(['x']).stream());
        if (fixture.reopen) {
          await store.close();
          ports = await fixture.reopen();
          store = open();
        }
        clock += 6_000;
        const report = await store.sweep();
        expect(report.rolledBackTxns).toBe(1);
        expect(await settledBlobPaths()).toEqual([]);
        const again = await store.acquire({ key: 'k', ttlSeconds: 5, owner: 'p' });
        expect(await again.list()).toEqual([]);
      });

      it('deletes committed-path blobs that no row points at', async () => {
        await ports.blobs.put('state/default/k/attachments/0190b6e0-0000-7000-8000-000000000002', new Blob(['x']).stream());
        const report = await store.sweep();
        expect(report.orphansDeleted).toBe(1);
        expect(await settledBlobPaths()).toEqual([]);
      });

      it('keeps a committed-path blob whose version still has a row (a promotion between its copy and its repoint)', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attachAll(asIterable({ name: 'a', body: bytes('a') }));
        const [staged] = await settledBlobPaths();
        const versionId = staged!.slice(staged!.lastIndexOf('.') + 1);
        // What a promotion's copy leaves before it repoints the row (a hard
        // link keeps the upload's old mtime, so age cannot protect it).
        await ports.blobs.put(`state/default/k/attachments/${versionId}`, new Blob(['a']).stream());
        const report = await store.sweep();
        expect(report.orphansDeleted).toBe(0);
        expect(await settledBlobPaths()).toEqual([`state/default/k/attachments/${versionId}`, staged].sort());
        await lease.release();
        expect(await readText((await store.openAttachment({ key: 'k', name: 'a' })).body)).toBe('a');
        expect(await settledBlobPaths()).toEqual([`state/default/k/attachments/${versionId}`]);
      });

      it('keeps the blobs of a live transaction', async () => {
        const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
        await lease.attach({ name: 'a', body: bytes('a') });
        await store.sweep();
        expect(await settledBlobPaths()).toHaveLength(1);
        await lease.release();
        expect(await readText((await store.openAttachment({ key: 'k', name: 'a' })).body)).toBe('a');
      });
    });
  });
}

const MARKER = 'ATTACHE-PLAINTEXT-MARKER-5c1e';
const testKey = (fill: number) => new Uint8Array(32).fill(fill);
const ENCRYPTED = { encryption: { keys: { k1: testKey(1) }, activeKeyId: 'k1' } } as const;
const PLAIN = { encryption: undefined } as const;

async function blobBytes(blobs: BlobStore, path: string): Promise<Uint8Array> {
  return readAll((await blobs.get(path))!);
}

function containsText(haystack: Uint8Array, needle: string): boolean {
  return new TextDecoder('latin1').decode(haystack).includes(needle);
}

interface EncryptionScenarioContext {
  ports: EnginePorts;
  store: AttachmentStore;
  open(extra?: Partial<AttachmentStoreOptions>): AttachmentStore;
}

/**
 * Encryption at rest on these ports. Each scenario opens its own stores over
 * the scenario's ports (with and without keys); they share the ports, so only
 * the suite's own store closes them.
 */
function describeEncryptionScenarios(get: () => EncryptionScenarioContext): void {
  describe('encryption at rest', () => {
    async function commit(target: AttachmentStore, key: string, name: string, body: Uint8Array): Promise<Attachment> {
      const lease = await target.acquire({ key, ttlSeconds: 30, owner: 'o' });
      const { attachment } = await lease.attach({ name, body });
      await lease.release();
      return attachment;
    }

    it('stores ciphertext: the plaintext never reaches the blob store, while size and hashes stay the plaintext\'s', async () => {
      const { ports, open } = get();
      const encrypted = open(ENCRYPTED);
      const text = MARKER.repeat(10_000);
      const lease = await encrypted.acquire({ key: 'secret', ttlSeconds: 30, owner: 'o' });
      const { attachment } = await lease.attach({ name: 'a.txt', body: bytes(text) });
      const staged = await blobPaths(ports.blobs);
      expect(staged).toHaveLength(1);
      expect(containsText(await blobBytes(ports.blobs, staged[0]!), MARKER)).toBe(false);
      await lease.release();
      await encrypted.sweep();
      expect(attachment.size).toBe(text.length);
      const plain = createAttachmentStore({ ...ports, sweepIntervalSeconds: 0 });
      const reference = await commit(plain, 'reference', 'a.txt', bytes(text));
      expect([attachment.crc32, attachment.sha256]).toEqual([reference.crc32, reference.sha256]);
      for (const path of await blobPaths(ports.blobs)) {
        if (!path.includes('/secret/')) continue;
        const stored = await blobBytes(ports.blobs, path);
        expect(containsText(stored, MARKER), path).toBe(false);
        expect(stored.byteLength).toBeGreaterThan(text.length);
      }
      expect(await readText((await encrypted.openAttachment({ key: 'secret', name: 'a.txt' })).body)).toBe(text);
      expect(await readText((await encrypted.openAttachment({ id: attachment.id })).body)).toBe(text);
    });

    it('reads byte ranges across segment boundaries of an encrypted attachment', async () => {
      const encrypted = get().open(ENCRYPTED);
      const body = new Uint8Array(200 * 1024).map((_, i) => (i * 7 + (i >> 16)) & 0xff);
      await commit(encrypted, 'ranges', 'big.bin', body);
      for (const [start, end] of [[0, 0], [65_535, 65_536], [65_536, 131_071], [131_000, 204_799], [204_799, 204_799]] as const) {
        const opened = await encrypted.openAttachment({ key: 'ranges', name: 'big.bin' }, { range: { start, end } });
        expect(opened.range).toEqual({ start, end });
        const read = await readAll(opened.body);
        expect(read.byteLength).toBe(end - start + 1);
        expect(read.every((byte, i) => byte === body[start + i])).toBe(true);
      }
      await expectCode(encrypted.openAttachment({ key: 'ranges', name: 'big.bin' }, { range: { start: 204_800 } }), 'range_not_satisfiable');
    });

    it('keeps reading an encrypted attachment after promotion, an overwrite and a lease-side read', async () => {
      const encrypted = get().open(ENCRYPTED);
      const first = await commit(encrypted, 'k-over', 'doc', bytes('first version'));
      await encrypted.sweep();
      const lease = await encrypted.acquire({ key: 'k-over', ttlSeconds: 30, owner: 'o' });
      await lease.attach({ name: 'doc', body: bytes('second version') });
      expect(await readText((await lease.open({ name: 'doc' })).body)).toBe('second version');
      expect(await readText((await encrypted.openAttachment({ key: 'k-over', name: 'doc' })).body)).toBe('first version');
      await lease.release();
      await encrypted.sweep();
      const opened = await encrypted.openAttachment({ id: first.id });
      expect(await readText(opened.body)).toBe('second version');
    });

    it('keeps attachments written before encryption was enabled readable', async () => {
      const { open } = get();
      await commit(open(PLAIN), 'mixed', 'old.txt', bytes('written in plaintext'));
      const encrypted = open(ENCRYPTED);
      await commit(encrypted, 'mixed', 'new.txt', bytes('written encrypted'));
      expect(await readText((await encrypted.openAttachment({ key: 'mixed', name: 'old.txt' })).body)).toBe('written in plaintext');
      expect(await readText((await encrypted.openAttachment({ key: 'mixed', name: 'new.txt' })).body)).toBe('written encrypted');
      const range = await encrypted.openAttachment({ key: 'mixed', name: 'old.txt' }, { range: { start: 11, end: 19 } });
      expect(await readText(range.body)).toBe('plaintext');
    });

    it('refuses an encrypted attachment with key_unavailable when encryption is off or its key is gone, never serving ciphertext', async () => {
      const { open } = get();
      const encrypted = open(ENCRYPTED);
      const attachment = await commit(encrypted, 'locked', 'a.txt', bytes('secret'));
      const plain = open(PLAIN);
      await expectCode(plain.openAttachment({ key: 'locked', name: 'a.txt' }), 'key_unavailable');
      await expectCode(plain.openAttachment({ id: attachment.id }), 'key_unavailable');
      await expectCode(plain.get(`attachment://${attachment.id}`), 'key_unavailable');
      // Metadata stays readable: it is not encrypted.
      expect((await plain.getAttachment({ key: 'locked', name: 'a.txt' })).size).toBe(6);
      const otherKey = open({ encryption: { keys: { k2: testKey(2) }, activeKeyId: 'k2' } });
      await expectCode(otherKey.openAttachment({ key: 'locked', name: 'a.txt' }), 'key_unavailable');
      const wrongKey = open({ encryption: { keys: { k1: testKey(9) }, activeKeyId: 'k1' } });
      const opened = await wrongKey.openAttachment({ key: 'locked', name: 'a.txt' });
      await expectCode(readAll(opened.body), 'decryption_failed');
    });

    it('errors the read with decryption_failed when the stored bytes were altered', async () => {
      const { ports, open } = get();
      const encrypted = open(ENCRYPTED);
      await commit(encrypted, 'tampered', 'a.bin', new Uint8Array(70_000).fill(5));
      await encrypted.sweep();
      const [path] = await blobPaths(ports.blobs);
      const stored = await blobBytes(ports.blobs, path!);
      stored[stored.byteLength - 100]! ^= 0x80;
      await ports.blobs.put(path!, new Blob([new Uint8Array(stored)]).stream());
      const opened = await encrypted.openAttachment({ key: 'tampered', name: 'a.bin' });
      const reader = opened.body.getReader();
      const first = await reader.read();
      expect(first.value?.byteLength).toBe(65_536);
      expect(first.value?.every((byte) => byte === 5)).toBe(true);
      await expectCode(reader.read(), 'decryption_failed');
    });

    it('encrypts document attachments (create) as well', async () => {
      const { ports, open } = get();
      const encrypted = open(ENCRYPTED);
      const handle = encrypted.create({ mimeType: 'text/plain', fileName: 'doc.txt', sizeBytes: MARKER.length });
      const writer = handle.sink.getWriter();
      await writer.write(bytes(MARKER));
      await writer.close();
      await handle.done;
      for (const path of await blobPaths(ports.blobs)) expect(containsText(await blobBytes(ports.blobs, path), MARKER)).toBe(false);
      const { body } = await encrypted.get(`attachment://${handle.attachmentId}`);
      expect(await readText(body)).toBe(MARKER);
    });
  });
}
