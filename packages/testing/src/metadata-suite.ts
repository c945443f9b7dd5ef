// The `MetadataStore` port, as a specification every implementation runs
// (memory, SQLite, PostgreSQL). The engine relies on exactly these
// behaviours; anything not tested here it must not assume.
import type { AttachmentRow, KeyRow, LeaseRow, MetadataStore, MetadataTx, TxnRow, UploadPartRow, UploadRow } from '@attache/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

export function describeMetadataStore(name: string, create: () => Promise<MetadataStore> | MetadataStore): void {
  describe(`MetadataStore: ${name}`, () => {
    let store: MetadataStore;

    beforeEach(async () => {
      store = await create();
      await store.migrate();
    });

    afterEach(async () => {
      await store.close();
    });

    const inTx = <T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T> => store.transaction(fn);

    describe('migrate', () => {
      it('can run again without harm and keeps existing rows', async () => {
        await inTx((tx) => tx.insertTxn(txnRow({ txnId: 'txn-1' })));
        await store.migrate();
        await store.migrate();
        expect(await inTx((tx) => tx.getTxn('txn-1'))).toEqual(txnRow({ txnId: 'txn-1' }));
      });
    });

    describe('transaction', () => {
      it("resolves with the callback's value", async () => {
        await expect(inTx(async () => 42)).resolves.toBe(42);
      });

      it('keeps every write when the callback resolves', async () => {
        await inTx(async (tx) => {
          await tx.putKey(keyRow({ fencingToken: 1 }));
          await tx.insertTxn(txnRow({ txnId: 'txn-1' }));
        });
        const [key, txn] = await inTx(async (tx) => [await tx.lockKey('ns', 'doc'), await tx.getTxn('txn-1')] as const);
        expect(key).toEqual(keyRow({ fencingToken: 1 }));
        expect(txn).toEqual(txnRow({ txnId: 'txn-1' }));
      });

      it('undoes every write when the callback throws, and rethrows its error', async () => {
        await inTx(async (tx) => {
          await tx.putKey(keyRow({ fencingToken: 1, leaseId: null }));
          await tx.insertLease(leaseRow({ leaseId: 'lease-old' }));
          await tx.insertTxn(txnRow({ txnId: 'txn-old' }));
          await tx.insertAttachment(attachmentRow({ versionId: 'v-old', name: 'kept.txt' }));
          await tx.enqueueGarbage(['garbage/old'], 1);
        });
        const before = await snapshot();

        const failure = new Error('boom');
        await expect(
          inTx(async (tx) => {
            await tx.putKey(keyRow({ fencingToken: 2, leaseId: 'lease-new' }));
            await tx.putKey(keyRow({ key: 'other', fencingToken: 1 }));
            await tx.insertLease(leaseRow({ leaseId: 'lease-new' }));
            await tx.updateLease('lease-old', { state: 'released', expiresAt: 5 });
            await tx.insertTxn(txnRow({ txnId: 'txn-new' }));
            await tx.updateTxn('txn-old', { state: 'committed', updatedAt: 9 });
            await tx.insertAttachment(attachmentRow({ versionId: 'v-new', name: 'new.txt' }));
            await tx.updateAttachment('v-old', { blobPath: 'moved', updatedAt: 9 });
            await tx.enqueueGarbage(['garbage/new'], 2);
            await tx.dequeueGarbage(['garbage/old']);
            await tx.pruneLeases(Number.MAX_SAFE_INTEGER);
            await tx.deleteAttachment('v-old');
            throw failure;
          }),
        ).rejects.toBe(failure);

        expect(await snapshot()).toEqual(before);
        expect(await inTx((tx) => tx.lockKey('ns', 'other'))).toBeUndefined();
        expect(await inTx((tx) => tx.getLease('lease-new'))).toBeUndefined();
        expect(await inTx((tx) => tx.getTxn('txn-new'))).toBeUndefined();
      });

      it('undoes the writes made before a rejected statement when the callback then throws', async () => {
        await inTx((tx) => tx.insertTxn(txnRow({ txnId: 'txn-1' })));
        await expect(
          inTx(async (tx) => {
            await tx.insertTxn(txnRow({ txnId: 'txn-2' }));
            await tx.insertTxn(txnRow({ txnId: 'txn-1' })); // duplicate primary key
          }),
        ).rejects.toThrow();
        expect(await inTx((tx) => tx.getTxn('txn-2'))).toBeUndefined();
      });

      it('serializes concurrent read-modify-write of one key row (20 increments end at 20)', async () => {
        const increments = Array.from({ length: 20 }, () =>
          inTx(async (tx) => {
            const current = await tx.lockKey('ns', 'doc');
            // Give other transactions every chance to interleave here.
            await pause();
            await tx.putKey(keyRow({ fencingToken: (current?.fencingToken ?? 0) + 1 }));
          }),
        );
        await Promise.all(increments);
        expect((await inTx((tx) => tx.lockKey('ns', 'doc')))?.fencingToken).toBe(20);
      });

      it("never shows a transaction another one's uncommitted writes", async () => {
        const failing = inTx(async (tx) => {
          await tx.putKey(keyRow({ fencingToken: 7 }));
          await pause();
          throw new Error('rolled back');
        });
        const reader = inTx((tx) => tx.lockKey('ns', 'doc'));
        await expect(failing).rejects.toThrow('rolled back');
        expect(await reader).toBeUndefined();
      });

      it('runs later transactions normally after one has failed', async () => {
        await expect(inTx(async () => Promise.reject(new Error('first fails')))).rejects.toThrow('first fails');
        await inTx((tx) => tx.putKey(keyRow({ fencingToken: 3 })));
        expect((await inTx((tx) => tx.lockKey('ns', 'doc')))?.fencingToken).toBe(3);
      });

      it('rejects calls on a transaction handle after its transaction has ended', async () => {
        const leaked = await inTx(async (tx) => tx);
        await expect(leaked.putKey(keyRow({ fencingToken: 1 }))).rejects.toThrow();
        expect(await inTx((tx) => tx.lockKey('ns', 'doc'))).toBeUndefined();
      });
    });

    describe('keys', () => {
      it('lockKey returns undefined for a key never written', async () => {
        expect(await inTx((tx) => tx.lockKey('ns', 'doc'))).toBeUndefined();
      });

      it('putKey inserts a key row, then replaces it (upsert)', async () => {
        await inTx((tx) => tx.putKey(keyRow({ fencingToken: 1, leaseId: 'lease-1' })));
        expect(await inTx((tx) => tx.lockKey('ns', 'doc'))).toEqual(keyRow({ fencingToken: 1, leaseId: 'lease-1' }));
        await inTx((tx) => tx.putKey(keyRow({ fencingToken: 2, leaseId: null })));
        expect(await inTx((tx) => tx.lockKey('ns', 'doc'))).toEqual(keyRow({ fencingToken: 2, leaseId: null }));
      });

      it('keeps keys of different namespaces apart', async () => {
        await inTx(async (tx) => {
          await tx.putKey(keyRow({ namespace: 'a', fencingToken: 1 }));
          await tx.putKey(keyRow({ namespace: 'b', fencingToken: 5 }));
        });
        expect((await inTx((tx) => tx.lockKey('a', 'doc')))?.fencingToken).toBe(1);
        expect((await inTx((tx) => tx.lockKey('b', 'doc')))?.fencingToken).toBe(5);
      });

      it('stores fencing tokens beyond 32 bits exactly', async () => {
        const big = 2 ** 40 + 3;
        await inTx((tx) => tx.putKey(keyRow({ fencingToken: big })));
        expect((await inTx((tx) => tx.lockKey('ns', 'doc')))?.fencingToken).toBe(big);
      });

      it('returns copies that callers cannot use to change stored rows', async () => {
        const written = keyRow({ fencingToken: 1 });
        await inTx(async (tx) => {
          await tx.putKey(written);
          written.fencingToken = 99;
          const read = await tx.lockKey('ns', 'doc');
          if (read) read.fencingToken = 42;
        });
        expect((await inTx((tx) => tx.lockKey('ns', 'doc')))?.fencingToken).toBe(1);
      });
    });

    describe('leases', () => {
      it('getLease returns the inserted row, and undefined for an unknown id', async () => {
        const row = leaseRow({ leaseId: 'lease-1', fencingToken: 3, expiresAt: 2 ** 42 });
        await inTx((tx) => tx.insertLease(row));
        expect(await inTx((tx) => tx.getLease('lease-1'))).toEqual(row);
        expect(await inTx((tx) => tx.getLease('lease-unknown'))).toBeUndefined();
      });

      it('insertLease rejects a lease id that exists', async () => {
        await inTx((tx) => tx.insertLease(leaseRow({ leaseId: 'lease-1' })));
        await expect(inTx((tx) => tx.insertLease(leaseRow({ leaseId: 'lease-1', owner: 'other' })))).rejects.toThrow();
        expect((await inTx((tx) => tx.getLease('lease-1')))?.owner).toBe('owner-a');
      });

      it('updateLease changes only the fields it is given', async () => {
        await inTx((tx) => tx.insertLease(leaseRow({ leaseId: 'lease-1', expiresAt: 100 })));
        await inTx((tx) => tx.updateLease('lease-1', { expiresAt: 200 }));
        expect(await inTx((tx) => tx.getLease('lease-1'))).toEqual(leaseRow({ leaseId: 'lease-1', expiresAt: 200 }));
        await inTx((tx) => tx.updateLease('lease-1', { state: 'released' }));
        expect(await inTx((tx) => tx.getLease('lease-1'))).toEqual(
          leaseRow({ leaseId: 'lease-1', expiresAt: 200, state: 'released' }),
        );
      });

      it('updateLease of an unknown lease changes nothing', async () => {
        await inTx((tx) => tx.updateLease('lease-unknown', { state: 'expired' }));
        expect(await inTx((tx) => tx.getLease('lease-unknown'))).toBeUndefined();
      });

      it('listActiveLeasesOfTxn returns the active leases of that transaction across keys', async () => {
        await inTx(async (tx) => {
          await tx.insertLease(leaseRow({ leaseId: 'l-a', key: 'a', txnId: 'txn-1', createdAt: 1 }));
          await tx.insertLease(leaseRow({ leaseId: 'l-b', key: 'b', txnId: 'txn-1', createdAt: 2 }));
          await tx.insertLease(leaseRow({ leaseId: 'l-done', key: 'c', txnId: 'txn-1', state: 'released' }));
          await tx.insertLease(leaseRow({ leaseId: 'l-other', key: 'd', txnId: 'txn-2' }));
        });
        const leases = await inTx((tx) => tx.listActiveLeasesOfTxn('txn-1'));
        expect(leases.map((lease) => lease.leaseId).sort()).toEqual(['l-a', 'l-b']);
        expect(await inTx((tx) => tx.listActiveLeasesOfTxn('txn-none'))).toEqual([]);
      });

      it('listExpiredLeases returns active leases expiring at or before now, oldest first, at most limit', async () => {
        await inTx(async (tx) => {
          await tx.insertLease(leaseRow({ leaseId: 'l-30', key: 'a', expiresAt: 30 }));
          await tx.insertLease(leaseRow({ leaseId: 'l-10', key: 'b', expiresAt: 10 }));
          await tx.insertLease(leaseRow({ leaseId: 'l-20', key: 'c', expiresAt: 20 }));
          await tx.insertLease(leaseRow({ leaseId: 'l-50-exactly-now', key: 'd', expiresAt: 50 }));
          await tx.insertLease(leaseRow({ leaseId: 'l-future', key: 'e', expiresAt: 51 }));
          await tx.insertLease(leaseRow({ leaseId: 'l-released', key: 'f', expiresAt: 1, state: 'released' }));
          await tx.insertLease(leaseRow({ leaseId: 'l-expired', key: 'g', expiresAt: 1, state: 'expired' }));
        });
        const all = await inTx((tx) => tx.listExpiredLeases(50, 100));
        expect(all.map((lease) => lease.leaseId)).toEqual(['l-10', 'l-20', 'l-30', 'l-50-exactly-now']);
        const firstTwo = await inTx((tx) => tx.listExpiredLeases(50, 2));
        expect(firstTwo.map((lease) => lease.leaseId)).toEqual(['l-10', 'l-20']);
      });

      it('pruneLeases forgets released and expired leases that expired before the cutoff, never active ones', async () => {
        await inTx(async (tx) => {
          await tx.insertLease(leaseRow({ leaseId: 'released-old', key: 'a', state: 'released', expiresAt: 10 }));
          await tx.insertLease(leaseRow({ leaseId: 'expired-old', key: 'b', state: 'expired', expiresAt: 20 }));
          await tx.insertLease(leaseRow({ leaseId: 'released-at-cutoff', key: 'c', state: 'released', expiresAt: 100 }));
          await tx.insertLease(leaseRow({ leaseId: 'active-old', key: 'd', state: 'active', expiresAt: 5 }));
        });
        expect(await inTx((tx) => tx.pruneLeases(100))).toBe(2);
        const remaining = await inTx(async (tx) =>
          Promise.all(
            ['released-old', 'expired-old', 'released-at-cutoff', 'active-old'].map(async (id) =>
              (await tx.getLease(id)) ? id : null,
            ),
          ),
        );
        expect(remaining).toEqual([null, null, 'released-at-cutoff', 'active-old']);
        expect(await inTx((tx) => tx.pruneLeases(100))).toBe(0);
      });
    });

    describe('txns', () => {
      it('pruneTxns forgets ended transactions last updated before the cutoff, never active ones', async () => {
        await inTx(async (tx) => {
          await tx.insertTxn(txnRow({ txnId: 'committed-old', state: 'committed', updatedAt: 10 }));
          await tx.insertTxn(txnRow({ txnId: 'rolled-back-old', state: 'rolled_back', updatedAt: 20 }));
          await tx.insertTxn(txnRow({ txnId: 'committed-at-cutoff', state: 'committed', updatedAt: 100 }));
          await tx.insertTxn(txnRow({ txnId: 'active-old', state: 'active', updatedAt: 5 }));
        });
        expect(await inTx((tx) => tx.pruneTxns(100))).toBe(2);
        const remaining = await inTx(async (tx) =>
          Promise.all(
            ['committed-old', 'rolled-back-old', 'committed-at-cutoff', 'active-old'].map(async (id) =>
              (await tx.getTxn(id)) ? id : null,
            ),
          ),
        );
        expect(remaining).toEqual([null, null, 'committed-at-cutoff', 'active-old']);
      });

      it('pruneTxns keeps an ended transaction that a lease row still refers to (a replayed release reads its outcome)', async () => {
        await inTx(async (tx) => {
          await tx.insertTxn(txnRow({ txnId: 'txn-with-lease', state: 'committed', updatedAt: 10 }));
          await tx.insertLease(leaseRow({ leaseId: 'lease-of-txn', txnId: 'txn-with-lease', state: 'released' }));
          await tx.insertTxn(txnRow({ txnId: 'txn-alone', state: 'committed', updatedAt: 10 }));
        });
        expect(await inTx((tx) => tx.pruneTxns(100))).toBe(1);
        expect(await inTx((tx) => tx.getTxn('txn-with-lease'))).toBeDefined();
        expect(await inTx((tx) => tx.getTxn('txn-alone'))).toBeUndefined();
      });

      it('lockTxn can be taken twice in one transaction and on a transaction without a row', async () => {
        await inTx(async (tx) => {
          await tx.lockTxn('txn-none');
          await tx.lockTxn('txn-none');
          await tx.lockKey('ns', 'k');
        });
      });

      it('getTxn returns the inserted row, and undefined for an unknown id', async () => {
        await inTx((tx) => tx.insertTxn(txnRow({ txnId: 'txn-1', createdAt: 2 ** 41 })));
        expect(await inTx((tx) => tx.getTxn('txn-1'))).toEqual(txnRow({ txnId: 'txn-1', createdAt: 2 ** 41 }));
        expect(await inTx((tx) => tx.getTxn('txn-unknown'))).toBeUndefined();
      });

      it('insertTxn rejects a transaction id that exists', async () => {
        await inTx((tx) => tx.insertTxn(txnRow({ txnId: 'txn-1' })));
        await expect(inTx((tx) => tx.insertTxn(txnRow({ txnId: 'txn-1' })))).rejects.toThrow();
      });

      it('updateTxn sets state and updatedAt, leaving createdAt', async () => {
        await inTx((tx) => tx.insertTxn(txnRow({ txnId: 'txn-1', createdAt: 1, updatedAt: 1 })));
        await inTx((tx) => tx.updateTxn('txn-1', { state: 'rolled_back', updatedAt: 8 }));
        expect(await inTx((tx) => tx.getTxn('txn-1'))).toEqual({
          txnId: 'txn-1',
          state: 'rolled_back',
          createdAt: 1,
          updatedAt: 8,
        });
      });
    });

    describe('attachments', () => {
      const scope = { namespace: 'ns', key: 'doc' };

      it('stores every field of a row, nulls included', async () => {
        const full = attachmentRow({ versionId: 'v-1', extension: 'pdf', keyId: 'key-2024', size: 2 ** 40 });
        const bare = attachmentRow({ versionId: 'v-2', name: 'bare', extension: null, keyId: null });
        await inTx(async (tx) => {
          await tx.insertAttachment(full);
          await tx.insertAttachment(bare);
        });
        expect(await inTx((tx) => tx.listAttachments(scope))).toEqual([bare, full]);
      });

      it('insertAttachment rejects a version id that exists', async () => {
        await inTx((tx) => tx.insertAttachment(attachmentRow({ versionId: 'v-1' })));
        await expect(
          inTx((tx) => tx.insertAttachment(attachmentRow({ versionId: 'v-1', name: 'other.txt' }))),
        ).rejects.toThrow();
      });

      describe('listAttachments', () => {
        it('without a transaction lists the committed rows of that key only, sorted by name', async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-b', name: 'b.txt' }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-a', name: 'a.txt' }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-other-key', key: 'other', name: 'a0.txt' }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-other-ns', namespace: 'x', name: 'a1.txt' }));
            await tx.insertAttachment(staged({ versionId: 'v-staged', name: 'c.txt', txnId: 'txn-1' }));
          });
          const rows = await inTx((tx) => tx.listAttachments(scope));
          expect(rows.map((row) => row.versionId)).toEqual(['v-a', 'v-b']);
        });

        it("with a transaction adds that transaction's staged and tombstone rows, committed row first on a tie", async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-a', name: 'a.txt' }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-b', name: 'b.txt', attachmentId: 'id-b' }));
            await tx.insertAttachment(staged({ versionId: 'v-a-new', name: 'a.txt', txnId: 'txn-1' }));
            await tx.insertAttachment(tombstone({ versionId: 'v-b-del', name: 'b.txt', attachmentId: 'id-b', txnId: 'txn-1' }));
            await tx.insertAttachment(staged({ versionId: 'v-c', name: 'c.txt', txnId: 'txn-1' }));
            await tx.insertAttachment(staged({ versionId: 'v-d-other', name: 'd.txt', txnId: 'txn-2' }));
            await tx.insertAttachment(staged({ versionId: 'v-e-other-key', key: 'other', name: 'e.txt', txnId: 'txn-1' }));
          });
          const rows = await inTx((tx) => tx.listAttachments(scope, 'txn-1'));
          expect(rows.map((row) => row.versionId)).toEqual(['v-a', 'v-a-new', 'v-b', 'v-b-del', 'v-c']);
        });

        it('sorts names by code point (UTF-8 byte order), the same on every store', async () => {
          // UTF-16 order would put the emoji (surrogates 0xD83D…) before U+FF5E.
          const names = ['b', 'a b', '\u{1F600}.png', 'B', '\uFF5E.txt', 'a', 'é', 'ab', '_'];
          await inTx(async (tx) => {
            for (const [index, name] of names.entries()) {
              await tx.insertAttachment(attachmentRow({ versionId: `v-${index}`, name }));
            }
          });
          const rows = await inTx((tx) => tx.listAttachments(scope));
          expect(rows.map((row) => row.name)).toEqual(['B', '_', 'a', 'a b', 'ab', 'b', 'é', '\uFF5E.txt', '\u{1F600}.png']);
        });

        it('returns an empty list for a key without attachments', async () => {
          expect(await inTx((tx) => tx.listAttachments(scope, 'txn-1'))).toEqual([]);
        });
      });

      describe('getCommittedById', () => {
        it('finds the committed row of an id in any key and ignores staged rows', async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-1', key: 'elsewhere', attachmentId: 'id-1' }));
            await tx.insertAttachment(staged({ versionId: 'v-2', attachmentId: 'id-2', txnId: 'txn-1' }));
          });
          expect((await inTx((tx) => tx.getCommittedById('id-1')))?.versionId).toBe('v-1');
          expect(await inTx((tx) => tx.getCommittedById('id-2'))).toBeUndefined();
          expect(await inTx((tx) => tx.getCommittedById('id-unknown'))).toBeUndefined();
        });
      });

      describe.each([
        ['findByName', (tx: MetadataTx, txnId: string | null) => tx.findByName(scope, 'a.txt', txnId)],
        ['findById', (tx: MetadataTx, txnId: string | null) => tx.findById(scope, 'id-a', txnId)],
      ] as const)('%s', (_method, find) => {
        it('with a null transaction returns the committed row and ignores staged ones', async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-committed', name: 'a.txt', attachmentId: 'id-a' }));
            await tx.insertAttachment(staged({ versionId: 'v-staged', name: 'a.txt', attachmentId: 'id-a', txnId: 'txn-1' }));
          });
          expect((await inTx((tx) => find(tx, null)))?.versionId).toBe('v-committed');
        });

        it("with a transaction prefers that transaction's staged row over the committed one", async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-committed', name: 'a.txt', attachmentId: 'id-a' }));
            await tx.insertAttachment(staged({ versionId: 'v-staged', name: 'a.txt', attachmentId: 'id-a', txnId: 'txn-1' }));
          });
          expect((await inTx((tx) => find(tx, 'txn-1')))?.versionId).toBe('v-staged');
        });

        it("with a transaction returns that transaction's tombstone", async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-committed', name: 'a.txt', attachmentId: 'id-a' }));
            await tx.insertAttachment(tombstone({ versionId: 'v-del', name: 'a.txt', attachmentId: 'id-a', txnId: 'txn-1' }));
          });
          const found = await inTx((tx) => find(tx, 'txn-1'));
          expect(found).toMatchObject({ versionId: 'v-del', state: 'tombstone' });
        });

        it('with a transaction falls back to the committed row, ignoring other transactions', async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-committed', name: 'a.txt', attachmentId: 'id-a' }));
            await tx.insertAttachment(staged({ versionId: 'v-other', name: 'a.txt', attachmentId: 'id-a', txnId: 'txn-2' }));
          });
          expect((await inTx((tx) => find(tx, 'txn-1')))?.versionId).toBe('v-committed');
        });

        it("with a transaction finds a staged row that has no committed counterpart", async () => {
          await inTx((tx) =>
            tx.insertAttachment(staged({ versionId: 'v-new', name: 'a.txt', attachmentId: 'id-a', txnId: 'txn-1' })),
          );
          expect((await inTx((tx) => find(tx, 'txn-1')))?.versionId).toBe('v-new');
          expect(await inTx((tx) => find(tx, null))).toBeUndefined();
        });

        it('looks only in the given key', async () => {
          await inTx((tx) =>
            tx.insertAttachment(attachmentRow({ versionId: 'v-1', key: 'other', name: 'a.txt', attachmentId: 'id-a' })),
          );
          expect(await inTx((tx) => find(tx, null))).toBeUndefined();
        });
      });

      it('listStagedOfTxn returns the staged and tombstone rows of a transaction across keys', async () => {
        await inTx(async (tx) => {
          await tx.insertAttachment(attachmentRow({ versionId: 'v-committed', name: 'a.txt' }));
          await tx.insertAttachment(staged({ versionId: 'v-1', key: 'doc', name: 'a.txt', txnId: 'txn-1' }));
          await tx.insertAttachment(tombstone({ versionId: 'v-2', key: 'other', name: 'b.txt', txnId: 'txn-1' }));
          await tx.insertAttachment(staged({ versionId: 'v-3', key: 'doc', name: 'c.txt', txnId: 'txn-2' }));
        });
        const rows = await inTx((tx) => tx.listStagedOfTxn('txn-1'));
        expect(rows.map((row) => row.versionId).sort()).toEqual(['v-1', 'v-2']);
        expect(await inTx((tx) => tx.listStagedOfTxn('txn-none'))).toEqual([]);
      });

      it('updateAttachment turns a staged row into a committed one', async () => {
        await inTx((tx) => tx.insertAttachment(staged({ versionId: 'v-1', txnId: 'txn-1', createdAt: 1, updatedAt: 1 })));
        await inTx((tx) =>
          tx.updateAttachment('v-1', { state: 'committed', txnId: null, blobPath: 'committed/path', updatedAt: 5, createdAt: 4 }),
        );
        const row = await inTx((tx) => tx.findByName(scope, 'file.txt', null));
        expect(row).toEqual({
          ...staged({ versionId: 'v-1', txnId: 'txn-1' }),
          state: 'committed',
          txnId: null,
          blobPath: 'committed/path',
          createdAt: 4,
          updatedAt: 5,
        });
        expect(await inTx((tx) => tx.listStagedOfTxn('txn-1'))).toEqual([]);
      });

      it('updateAttachment changes only the fields it is given', async () => {
        const row = attachmentRow({ versionId: 'v-1' });
        await inTx((tx) => tx.insertAttachment(row));
        await inTx((tx) => tx.updateAttachment('v-1', { blobPath: 'elsewhere' }));
        expect(await inTx((tx) => tx.findByName(scope, row.name, null))).toEqual({ ...row, blobPath: 'elsewhere' });
      });

      it('deleteAttachment removes the row; an unknown version id is not an error', async () => {
        await inTx((tx) => tx.insertAttachment(attachmentRow({ versionId: 'v-1' })));
        await inTx(async (tx) => {
          await tx.deleteAttachment('v-1');
          await tx.deleteAttachment('v-unknown');
        });
        expect(await inTx((tx) => tx.listAttachments(scope))).toEqual([]);
      });

      describe('unique names', () => {
        it('rejects a second committed row of the same name in one key', async () => {
          await inTx((tx) => tx.insertAttachment(attachmentRow({ versionId: 'v-1', name: 'a.txt' })));
          await expect(
            inTx((tx) => tx.insertAttachment(attachmentRow({ versionId: 'v-2', name: 'a.txt', attachmentId: 'id-2' }))),
          ).rejects.toThrow();
          expect((await inTx((tx) => tx.listAttachments(scope))).map((row) => row.versionId)).toEqual(['v-1']);
        });

        it('rejects committing a staged row while a committed row of that name exists', async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-1', name: 'a.txt' }));
            await tx.insertAttachment(staged({ versionId: 'v-2', name: 'a.txt', txnId: 'txn-1' }));
          });
          await expect(inTx((tx) => tx.updateAttachment('v-2', { state: 'committed', txnId: null }))).rejects.toThrow();
        });

        it('rejects a second staged row of the same name in one transaction and key', async () => {
          await inTx((tx) => tx.insertAttachment(staged({ versionId: 'v-1', name: 'a.txt', txnId: 'txn-1' })));
          await expect(
            inTx((tx) => tx.insertAttachment(tombstone({ versionId: 'v-2', name: 'a.txt', txnId: 'txn-1' }))),
          ).rejects.toThrow();
        });

        it('allows the same name in other keys, beside a committed row, and in other transactions', async () => {
          await inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-1', name: 'a.txt' }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-2', key: 'other', name: 'a.txt' }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-3', namespace: 'other', name: 'a.txt' }));
            await tx.insertAttachment(staged({ versionId: 'v-4', name: 'a.txt', txnId: 'txn-1' }));
            await tx.insertAttachment(staged({ versionId: 'v-5', name: 'a.txt', txnId: 'txn-2' }));
            await tx.insertAttachment(staged({ versionId: 'v-6', key: 'other', name: 'a.txt', txnId: 'txn-1' }));
          });
          expect(await inTx((tx) => tx.listStagedOfTxn('txn-1'))).toHaveLength(2);
        });
      });

      it('listUnpromoted returns committed rows whose blob sits under /.staging/, at most limit', async () => {
        await inTx(async (tx) => {
          await tx.insertAttachment(
            attachmentRow({ versionId: 'v-1', name: 'a', blobPath: 'state/ns/doc/.staging/txn-1/attachments/v-1', updatedAt: 1 }),
          );
          await tx.insertAttachment(
            attachmentRow({ versionId: 'v-2', name: 'b', blobPath: 'state/ns/doc/.staging/txn-1/attachments/v-2', updatedAt: 2 }),
          );
          await tx.insertAttachment(attachmentRow({ versionId: 'v-3', name: 'c', blobPath: 'state/ns/doc/attachments/v-3' }));
          await tx.insertAttachment(
            staged({ versionId: 'v-4', name: 'd', txnId: 'txn-2', blobPath: 'state/ns/doc/.staging/txn-2/attachments/v-4' }),
          );
        });
        const all = await inTx((tx) => tx.listUnpromoted(10));
        expect(all.map((row) => row.versionId).sort()).toEqual(['v-1', 'v-2']);
        expect(await inTx((tx) => tx.listUnpromoted(1))).toHaveLength(1);
      });

      describe('key rotation', () => {
        const seedKeys = () =>
          inTx(async (tx) => {
            await tx.insertAttachment(attachmentRow({ versionId: 'v-1', name: 'a', keyId: null, size: 1 }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-2', name: 'b', keyId: 'old', size: 20 }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-3', name: 'c', keyId: 'new', size: 300 }));
            await tx.insertAttachment(attachmentRow({ versionId: 'v-4', name: 'd', keyId: 'older', size: 4000 }));
            await tx.insertAttachment(staged({ versionId: 'v-5', name: 'e', txnId: 'txn-1', keyId: 'old', size: 50000 }));
          });

        it('listNotOnKey pages through committed rows under other keys (and plaintext ones when asked) in version id order', async () => {
          await seedKeys();
          const page = (afterVersionId: string | null, limit: number, includePlaintext = true) =>
            inTx((tx) => tx.listNotOnKey({ keyId: 'new', includePlaintext, afterVersionId, limit }));
          expect((await page(null, 10)).map((row) => row.versionId)).toEqual(['v-1', 'v-2', 'v-4']);
          expect((await page(null, 10, false)).map((row) => row.versionId)).toEqual(['v-2', 'v-4']);
          expect((await page(null, 2)).map((row) => row.versionId)).toEqual(['v-1', 'v-2']);
          expect((await page('v-2', 2)).map((row) => row.versionId)).toEqual(['v-4']);
          expect(await page('v-4', 2)).toEqual([]);
          expect((await page(null, 1))[0]).toEqual(attachmentRow({ versionId: 'v-1', name: 'a', keyId: null, size: 1 }));
        });

        it('countNotOnKey counts those rows and sums their sizes', async () => {
          expect(await inTx((tx) => tx.countNotOnKey({ keyId: 'new', includePlaintext: true }))).toEqual({ rows: 0, bytes: 0 });
          await seedKeys();
          expect(await inTx((tx) => tx.countNotOnKey({ keyId: 'new', includePlaintext: true }))).toEqual({ rows: 3, bytes: 4021 });
          expect(await inTx((tx) => tx.countNotOnKey({ keyId: 'new', includePlaintext: false }))).toEqual({ rows: 2, bytes: 4020 });
        });

        it('repointEncrypted switches blob path and key id of a committed row still at the old blob, nothing else', async () => {
          await seedKeys();
          const repointed = await inTx((tx) =>
            tx.repointEncrypted('v-2', { fromBlobPath: 'state/ns/doc/attachments/v-2', toBlobPath: 'rotated/v-2', keyId: 'new' }),
          );
          expect(repointed).toBe(true);
          const rows = await inTx((tx) => tx.listAttachments({ namespace: 'ns', key: 'doc' }));
          expect(rows.find((row) => row.versionId === 'v-2')).toEqual(
            attachmentRow({ versionId: 'v-2', name: 'b', keyId: 'new', size: 20, blobPath: 'rotated/v-2' }),
          );
          expect(rows.find((row) => row.versionId === 'v-1')).toEqual(attachmentRow({ versionId: 'v-1', name: 'a', keyId: null, size: 1 }));
        });

        it('repointEncrypted changes nothing when the row moved to another blob, is gone, or is not committed', async () => {
          await seedKeys();
          const attempt = (versionId: string, fromBlobPath: string) =>
            inTx((tx) => tx.repointEncrypted(versionId, { fromBlobPath, toBlobPath: 'rotated/x', keyId: 'new' }));
          expect(await attempt('v-2', 'state/ns/doc/attachments/other')).toBe(false);
          expect(await attempt('v-9', 'state/ns/doc/attachments/v-9')).toBe(false);
          expect(await attempt('v-5', 'state/ns/doc/.staging/txn-1/attachments/v-5')).toBe(false);
          const rows = await inTx((tx) => tx.listAttachments({ namespace: 'ns', key: 'doc' }, 'txn-1'));
          expect(rows.filter((row) => row.blobPath === 'rotated/x')).toEqual([]);
          expect(await inTx((tx) => tx.referencedBlobPaths(['rotated/x']))).toEqual(new Set());
        });
      });

      it('existingVersionIds reports which of many (> 1000) version ids have a row of any state', async () => {
        const rowCount = 1200;
        await inTx(async (tx) => {
          for (let index = 0; index < rowCount; index += 1) {
            const fields = { versionId: `v-${index}`, name: `file-${index}`, blobPath: `blobs/${index}` };
            await tx.insertAttachment(index % 3 === 0 ? staged({ ...fields, txnId: 'txn-1' }) : attachmentRow(fields));
          }
        });
        const asked = Array.from({ length: 2 * rowCount }, (_, index) => `v-${index}`);
        const found = await inTx((tx) => tx.existingVersionIds(asked));
        expect(found.size).toBe(rowCount);
        expect(found.has('v-0')).toBe(true);
        expect(found.has(`v-${rowCount}`)).toBe(false);
        expect(await inTx((tx) => tx.existingVersionIds([]))).toEqual(new Set());
      });

      it('referencedBlobPaths reports which of many (> 1000) paths a row of any state points at', async () => {
        const rowCount = 1200;
        await inTx(async (tx) => {
          for (let index = 0; index < rowCount; index += 1) {
            const fields = { versionId: `v-${index}`, name: `file-${index}`, blobPath: `blobs/${index}` };
            await tx.insertAttachment(index % 3 === 0 ? staged({ ...fields, txnId: 'txn-1' }) : attachmentRow(fields));
          }
        });
        const asked = Array.from({ length: 2 * rowCount }, (_, index) => `blobs/${index}`);
        const found = await inTx((tx) => tx.referencedBlobPaths(asked));
        expect(found.size).toBe(rowCount);
        expect(found.has('blobs/0')).toBe(true);
        expect(found.has(`blobs/${rowCount - 1}`)).toBe(true);
        expect(found.has(`blobs/${rowCount}`)).toBe(false);
        expect(await inTx((tx) => tx.referencedBlobPaths([]))).toEqual(new Set());
      });
    });

    describe('uploads', () => {
      it('getUpload returns the inserted row (large sizes exact), and undefined for an unknown id', async () => {
        const row = uploadRow({ length: 2 ** 40 + 3, fencingToken: 2 ** 40 });
        await inTx((tx) => tx.insertUpload(row));
        expect(await inTx((tx) => tx.getUpload('up-1'))).toEqual(row);
        expect(await inTx((tx) => tx.getUpload('up-unknown'))).toBeUndefined();
      });

      it('insertUpload rejects an upload id that exists', async () => {
        await inTx((tx) => tx.insertUpload(uploadRow()));
        await expect(inTx((tx) => tx.insertUpload(uploadRow()))).rejects.toThrow();
      });

      it('advanceUpload records the part and moves the offset only from the offset given', async () => {
        await inTx((tx) => tx.insertUpload(uploadRow()));
        const patch = { offset: 5, crc32: '00000005', expiresAt: 9_000, updatedAt: 200 };
        expect(await inTx((tx) => tx.advanceUpload('up-1', 0, uploadPart({ start: 0, size: 5, keyId: 'k1' }), patch))).toBe(true);
        // A second writer that also started at 0 loses, and records nothing.
        expect(await inTx((tx) => tx.advanceUpload('up-1', 0, uploadPart({ start: 0, size: 7, blobPath: 'uploads/x' }), patch))).toBe(false);
        expect(await inTx((tx) => tx.getUpload('up-1'))).toEqual(uploadRow({ offset: 5, crc32: '00000005', expiresAt: 9_000, updatedAt: 200 }));
        expect(await inTx((tx) => tx.listUploadParts('up-1'))).toEqual([uploadPart({ start: 0, size: 5, keyId: 'k1' })]);
      });

      it('advanceUpload refuses a finished upload and an unknown one', async () => {
        await inTx((tx) => tx.insertUpload(uploadRow({ state: 'done' })));
        const patch = { offset: 5, crc32: '00000005', expiresAt: 9_000, updatedAt: 200 };
        expect(await inTx((tx) => tx.advanceUpload('up-1', 0, uploadPart(), patch))).toBe(false);
        expect(await inTx((tx) => tx.advanceUpload('up-unknown', 0, uploadPart({ uploadId: 'up-unknown' }), patch))).toBe(false);
      });

      it('concurrent advanceUpload calls from one offset: exactly one wins', async () => {
        await inTx((tx) => tx.insertUpload(uploadRow()));
        const results = await Promise.all(
          [1, 2, 3, 4].map((writer) =>
            inTx(async (tx) => {
              await pause();
              return tx.advanceUpload('up-1', 0, uploadPart({ size: writer, blobPath: `uploads/w${writer}` }), {
                offset: writer,
                crc32: '00000000',
                expiresAt: 9_000,
                updatedAt: 200,
              });
            }),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await inTx((tx) => tx.listUploadParts('up-1'))).toHaveLength(1);
      });

      it('listUploadParts returns parts by start; deleteUpload forgets the upload and its parts', async () => {
        await inTx(async (tx) => {
          await tx.insertUpload(uploadRow());
          await tx.insertUpload(uploadRow({ uploadId: 'up-2' }));
        });
        for (const [from, size] of [[0, 3], [3, 4], [7, 2]] as const) {
          await inTx((tx) =>
            tx.advanceUpload('up-1', from, uploadPart({ start: from, size, blobPath: `uploads/p${from}` }), {
              offset: from + size,
              crc32: '00000000',
              expiresAt: 9_000,
              updatedAt: 200,
            }),
          );
        }
        expect((await inTx((tx) => tx.listUploadParts('up-1'))).map((part) => part.start)).toEqual([0, 3, 7]);
        await inTx((tx) => tx.deleteUpload('up-1'));
        expect(await inTx((tx) => tx.getUpload('up-1'))).toBeUndefined();
        expect(await inTx((tx) => tx.listUploadParts('up-1'))).toEqual([]);
        expect(await inTx((tx) => tx.getUpload('up-2'))).toBeDefined();
      });

      it('updateUpload changes only the fields it is given', async () => {
        await inTx((tx) => tx.insertUpload(uploadRow()));
        await inTx((tx) => tx.updateUpload('up-1', { state: 'done', attachmentId: 'att-1' }));
        expect(await inTx((tx) => tx.getUpload('up-1'))).toEqual(uploadRow({ state: 'done', attachmentId: 'att-1' }));
      });

      it('listAbandonedUploads: expired ones, and unfinished ones whose transaction is not active, oldest first', async () => {
        await inTx(async (tx) => {
          await tx.insertTxn(txnRow({ txnId: 'txn-live' }));
          await tx.insertTxn(txnRow({ txnId: 'txn-ended', state: 'committed' }));
          await tx.insertUpload(uploadRow({ uploadId: 'expired-late', expiresAt: 90 }));
          await tx.insertUpload(uploadRow({ uploadId: 'expired-early', expiresAt: 50 }));
          await tx.insertUpload(uploadRow({ uploadId: 'fresh', expiresAt: 5_000 }));
          await tx.insertUpload(uploadRow({ uploadId: 'live-txn', txnId: 'txn-live', expiresAt: 5_000 }));
          await tx.insertUpload(uploadRow({ uploadId: 'ended-txn', txnId: 'txn-ended', expiresAt: 6_000 }));
          await tx.insertUpload(uploadRow({ uploadId: 'forgotten-txn', txnId: 'txn-gone', expiresAt: 7_000 }));
          await tx.insertUpload(uploadRow({ uploadId: 'done-ended-txn', txnId: 'txn-ended', state: 'done', expiresAt: 8_000 }));
        });
        const abandoned = await inTx((tx) => tx.listAbandonedUploads(100, 10));
        expect(abandoned.map((row) => row.uploadId)).toEqual(['expired-early', 'expired-late', 'ended-txn', 'forgotten-txn']);
        expect((await inTx((tx) => tx.listAbandonedUploads(100, 1))).map((row) => row.uploadId)).toEqual(['expired-early']);
      });
    });

    describe('garbage', () => {
      it('lists enqueued paths oldest first, at most limit', async () => {
        await inTx(async (tx) => {
          await tx.enqueueGarbage(['p/late'], 20);
          await tx.enqueueGarbage(['p/early-b', 'p/early-a'], 10);
        });
        expect(await inTx((tx) => tx.listGarbage(10))).toEqual(['p/early-a', 'p/early-b', 'p/late']);
        expect(await inTx((tx) => tx.listGarbage(2))).toEqual(['p/early-a', 'p/early-b']);
      });

      it('lists only paths enqueued at or before enqueuedBefore when given', async () => {
        await inTx(async (tx) => {
          await tx.enqueueGarbage(['p/old'], 10);
          await tx.enqueueGarbage(['p/edge'], 20);
          await tx.enqueueGarbage(['p/new'], 30);
        });
        expect(await inTx((tx) => tx.listGarbage(10, 20))).toEqual(['p/old', 'p/edge']);
        expect(await inTx((tx) => tx.listGarbage(10, 9))).toEqual([]);
      });

      it('queuedGarbage reports which of many (> 1000) paths are queued', async () => {
        const queued = Array.from({ length: 1200 }, (_, index) => `g/${index}`);
        await inTx((tx) => tx.enqueueGarbage(queued, 1));
        const found = await inTx((tx) => tx.queuedGarbage([...queued, 'g/not-queued']));
        expect(found.size).toBe(1200);
        expect(found.has('g/1199')).toBe(true);
        expect(found.has('g/not-queued')).toBe(false);
        expect(await inTx((tx) => tx.queuedGarbage([]))).toEqual(new Set());
      });

      it('treats enqueueing a path twice as harmless, in one call or two', async () => {
        await inTx((tx) => tx.enqueueGarbage(['p/a', 'p/a'], 1));
        await inTx((tx) => tx.enqueueGarbage(['p/a', 'p/b'], 2));
        expect(await inTx((tx) => tx.listGarbage(10))).toEqual(['p/a', 'p/b']);
      });

      it('dequeueGarbage removes the given paths; unknown paths are not an error', async () => {
        await inTx((tx) => tx.enqueueGarbage(['p/a', 'p/b', 'p/c'], 1));
        await inTx((tx) => tx.dequeueGarbage(['p/a', 'p/c', 'p/unknown']));
        expect(await inTx((tx) => tx.listGarbage(10))).toEqual(['p/b']);
      });

      it('handles batches larger than 1000 paths', async () => {
        const paths = Array.from({ length: 1500 }, (_, index) => `p/${String(index).padStart(4, '0')}`);
        await inTx((tx) => tx.enqueueGarbage(paths, 1));
        expect(await inTx((tx) => tx.listGarbage(5000))).toEqual(paths);
        await inTx((tx) => tx.dequeueGarbage(paths.slice(0, 1400)));
        expect(await inTx((tx) => tx.listGarbage(5000))).toEqual(paths.slice(1400));
      });
    });

    describe('blob data (small blobs inline)', () => {
      type BlobDataTx = Required<
        Pick<MetadataTx, 'putBlobData' | 'getBlobData' | 'statBlobData' | 'deleteBlobData' | 'moveBlobData' | 'listBlobData'>
      >;
      const inBlobTx = <T>(fn: (tx: BlobDataTx) => Promise<T>): Promise<T> => store.transaction((tx) => fn(tx as BlobDataTx));
      const bytesOf = (...values: number[]) => new Uint8Array(values);

      it('is offered', () => {
        expect(store.holdsBlobData).toBe(true);
      });

      it('stores bytes (zero bytes included) and reads them back with their size and time; a put replaces', async () => {
        const binary = Uint8Array.from({ length: 256 }, (_, index) => index);
        await inBlobTx(async (tx) => {
          await tx.putBlobData({ path: 'state/a', data: binary, createdAt: 10 });
          await tx.putBlobData({ path: 'state/empty', data: new Uint8Array(0), createdAt: 11 });
        });
        const row = await inBlobTx((tx) => tx.getBlobData('state/a'));
        expect(row && { ...row, data: [...row.data] }).toEqual({ path: 'state/a', data: [...binary], createdAt: 10 });
        expect(await inBlobTx((tx) => tx.statBlobData('state/a'))).toEqual({ path: 'state/a', size: 256, modifiedAt: 10 });
        expect((await inBlobTx((tx) => tx.getBlobData('state/empty')))?.data.byteLength).toBe(0);
        await inBlobTx((tx) => tx.putBlobData({ path: 'state/a', data: bytesOf(7), createdAt: 20 }));
        expect(await inBlobTx((tx) => tx.statBlobData('state/a'))).toEqual({ path: 'state/a', size: 1, modifiedAt: 20 });
        expect(await inBlobTx((tx) => tx.getBlobData('state/missing'))).toBeUndefined();
        expect(await inBlobTx((tx) => tx.statBlobData('state/missing'))).toBeUndefined();
      });

      it('rolls a put back with its transaction', async () => {
        await expect(
          inBlobTx(async (tx) => {
            await tx.putBlobData({ path: 'state/r', data: bytesOf(1), createdAt: 1 });
            throw new Error('abandon');
          }),
        ).rejects.toThrow('abandon');
        expect(await inBlobTx((tx) => tx.getBlobData('state/r'))).toBeUndefined();
      });

      it('deletes, answering whether there was a blob; a missing path is not an error', async () => {
        await inBlobTx((tx) => tx.putBlobData({ path: 'state/d', data: bytesOf(1), createdAt: 1 }));
        expect(await inBlobTx((tx) => tx.deleteBlobData('state/d'))).toBe(true);
        expect(await inBlobTx((tx) => tx.deleteBlobData('state/d'))).toBe(false);
        expect(await inBlobTx((tx) => tx.getBlobData('state/d'))).toBeUndefined();
      });

      it('moves a blob to a free path with its bytes and time, answering false when there is none to move', async () => {
        const data = new Uint8Array(300).map((_, index) => index * 7);
        await inBlobTx((tx) => tx.putBlobData({ path: 'state/.staging/t/m', data, createdAt: 5 }));
        expect(await inBlobTx((tx) => tx.moveBlobData('state/.staging/t/m', 'state/m'))).toBe(true);
        expect(await inBlobTx((tx) => tx.getBlobData('state/.staging/t/m'))).toBeUndefined();
        const moved = await inBlobTx((tx) => tx.getBlobData('state/m'));
        expect(moved && { ...moved, data: [...moved.data] }).toEqual({ path: 'state/m', data: [...data], createdAt: 5 });
        expect(await inBlobTx((tx) => tx.moveBlobData('state/.staging/t/m', 'state/other'))).toBe(false);
        expect(await inBlobTx((tx) => tx.getBlobData('state/other'))).toBeUndefined();
      });

      it('moves over a blob already at the new path, and leaves that one alone when there is nothing to move', async () => {
        await inBlobTx(async (tx) => {
          await tx.putBlobData({ path: 'state/.staging/t/n', data: bytesOf(1, 2), createdAt: 1 });
          await tx.putBlobData({ path: 'state/n', data: bytesOf(9), createdAt: 2 });
        });
        expect(await inBlobTx((tx) => tx.moveBlobData('state/.staging/t/missing', 'state/n'))).toBe(false);
        expect([...((await inBlobTx((tx) => tx.getBlobData('state/n')))?.data ?? [])]).toEqual([9]);
        expect(await inBlobTx((tx) => tx.moveBlobData('state/.staging/t/n', 'state/n'))).toBe(true);
        expect([...((await inBlobTx((tx) => tx.getBlobData('state/n')))?.data ?? [])]).toEqual([1, 2]);
        expect(await inBlobTx((tx) => tx.getBlobData('state/.staging/t/n'))).toBeUndefined();
      });

      it('rolls a move back with its transaction', async () => {
        await inBlobTx((tx) => tx.putBlobData({ path: 'state/from', data: bytesOf(9), createdAt: 1 }));
        await expect(
          inBlobTx(async (tx) => {
            expect(await tx.moveBlobData('state/from', 'state/to')).toBe(true);
            throw new Error('abandon');
          }),
        ).rejects.toThrow('abandon');
        expect([...((await inBlobTx((tx) => tx.getBlobData('state/from')))?.data ?? [])]).toEqual([9]);
        expect(await inBlobTx((tx) => tx.getBlobData('state/to'))).toBeUndefined();
      });

      it('lists by prefix in path order, page after page, taking LIKE wildcards literally', async () => {
        const paths = ['p_x/1', 'p%/1', 'pa/1', 'p/3', 'p/1', 'p/2', 'p/10', 'q/1', 'p'];
        await inBlobTx(async (tx) => {
          for (const [index, path] of paths.entries()) await tx.putBlobData({ path, data: new Uint8Array(index), createdAt: index });
        });
        const list = (prefix: string, after: string | undefined, limit: number) =>
          inBlobTx((tx) => tx.listBlobData(prefix, after, limit)).then((rows) => rows.map((row) => row.path));
        expect(await list('p/', undefined, 10)).toEqual(['p/1', 'p/10', 'p/2', 'p/3']);
        expect(await list('p/', undefined, 2)).toEqual(['p/1', 'p/10']);
        expect(await list('p/', 'p/10', 2)).toEqual(['p/2', 'p/3']);
        expect(await list('p/', 'p/3', 2)).toEqual([]);
        expect(await list('p_', undefined, 10)).toEqual(['p_x/1']);
        expect(await list('p%', undefined, 10)).toEqual(['p%/1']);
        expect(await inBlobTx((tx) => tx.listBlobData('q/', undefined, 10))).toEqual([{ path: 'q/1', size: 7, modifiedAt: 7 }]);
      });
    });

    describe('close', () => {
      it('lets a running transaction finish first', async () => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        const running = inTx(async (tx) => {
          await gate;
          await tx.putKey(keyRow({ fencingToken: 1 }));
          return 'done';
        });
        await pause();
        const closed = store.close();
        release();
        await expect(running).resolves.toBe('done');
        await closed;
      });

      it('can be called twice', async () => {
        await store.close();
        await store.close();
      });
    });

    /** Everything the rollback test wrote in its setup, read back. */
    async function snapshot(): Promise<unknown> {
      return inTx(async (tx) => ({
        key: await tx.lockKey('ns', 'doc'),
        lease: await tx.getLease('lease-old'),
        txn: await tx.getTxn('txn-old'),
        attachments: await tx.listAttachments({ namespace: 'ns', key: 'doc' }),
        garbage: await tx.listGarbage(10),
      }));
    }
  });
}

/** Yields to the event loop (a macrotask), so concurrent work really interleaves. */
function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1));
}

function keyRow(fields: Partial<KeyRow> = {}): KeyRow {
  return { namespace: 'ns', key: 'doc', fencingToken: 1, leaseId: null, ...fields };
}

function leaseRow(fields: Partial<LeaseRow> = {}): LeaseRow {
  return {
    leaseId: 'lease-1',
    namespace: 'ns',
    key: 'doc',
    txnId: 'txn-1',
    owner: 'owner-a',
    fencingToken: 1,
    expiresAt: 1_000,
    state: 'active',
    createdAt: 100,
    ...fields,
  };
}

function txnRow(fields: Partial<TxnRow> = {}): TxnRow {
  return { txnId: 'txn-1', state: 'active', createdAt: 100, updatedAt: 100, ...fields };
}

function attachmentRow(fields: Partial<AttachmentRow> = {}): AttachmentRow {
  const versionId = fields.versionId ?? 'v-1';
  return {
    versionId,
    attachmentId: `id-of-${versionId}`,
    namespace: 'ns',
    key: 'doc',
    name: 'file.txt',
    state: 'committed',
    txnId: null,
    size: 11,
    contentType: 'text/plain',
    extension: 'txt',
    crc32: '0d4a1185',
    sha256: 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9',
    blobPath: `state/ns/doc/attachments/${versionId}`,
    keyId: null,
    createdAt: 100,
    updatedAt: 100,
    ...fields,
  };
}

function staged(fields: Partial<AttachmentRow> & { txnId: string }): AttachmentRow {
  const versionId = fields.versionId ?? 'v-1';
  return attachmentRow({
    state: 'staged',
    blobPath: `state/ns/doc/.staging/${fields.txnId}/attachments/${versionId}`,
    ...fields,
  });
}

function tombstone(fields: Partial<AttachmentRow> & { txnId: string }): AttachmentRow {
  return attachmentRow({ state: 'tombstone', blobPath: '', size: 0, ...fields });
}

function uploadRow(fields: Partial<UploadRow> = {}): UploadRow {
  return {
    uploadId: 'up-1',
    state: 'receiving',
    length: 20,
    offset: 0,
    crc32: '00000000',
    name: 'big.bin',
    contentType: 'application/octet-stream',
    metadata: 'filename YmlnLmJpbg==',
    namespace: 'ns',
    key: null,
    leaseId: null,
    txnId: null,
    fencingToken: null,
    attachmentId: null,
    expiresAt: 5_000,
    createdAt: 100,
    updatedAt: 100,
    ...fields,
  };
}

function uploadPart(fields: Partial<UploadPartRow> = {}): UploadPartRow {
  return { uploadId: 'up-1', start: 0, size: 5, blobPath: 'uploads/up-1.0', keyId: null, ...fields };
}
