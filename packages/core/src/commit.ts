// The commit protocol (DESIGN.md "Transactions and crash safety"), top to
// bottom. Crash points are named where a power cut could land; after any of
// them, one `sweep()` finishes the work (see sweep.ts).
//
//  upload   1. stream → hash → blob at the staged path            [upload.after-blob]
//           2. staged row inserted (only once the blob is durable)  [upload.after-row]
//  commit   3. ONE metadata transaction: lease + fencing checked,
//              staged rows become committed rows (still pointing at
//              the staged blob), staged deletes applied, replaced
//              blobs queued as garbage, leases released, txn marked
//              committed                                           [commit.after-metadata]
//              A blob kept in the metadata store (inline-blobs.ts) is
//              promoted and dropped right here, in the same
//              transaction: it moves with its row, so steps 4–7 are
//              for blobs in the blob store only.
//           — the release answers here: steps 4–7 run in the background
//             (background.ts); the sweeper finishes them after a crash —
//  promote  4. copy staged blob → committed path                   [promote.after-copy]
//           5. row repointed to the committed path                 [promote.after-row]
//           6. staged blob deleted (or, with a delete grace, queued
//              as garbage in step 5's transaction)
//  gc       7. queued garbage blobs deleted, then dequeued         [gc.after-delete]
//              (with a delete grace: by the sweeper, once old enough)
//  rollback   staged rows deleted and their blobs queued as garbage
//             in one transaction                                   [rollback.after-metadata]
//
// A single-part upload writes its blob at the committed path in step 1
// (attachments.ts), so step 3 has nothing to promote; a lone document
// (documents.ts) skips 2–6: one metadata write inserts its committed row.
//
// Rows always point at a blob that exists: a blob is deleted only after no
// row points at it (garbage is queued in the same transaction that drops the
// row), and promotion repoints the row before deleting the staged copy.
import type { EngineContext } from './engine-context.js';
import type { AttachmentRow, LeaseRow, LeaseState, MetadataTx } from './ports.js';
import { committedBlobPath, isStagedPath } from './paths.js';

export interface TxnOutcome {
  /** Keys whose lease ended, for waking blocked acquires. */
  releasedKeys: Array<{ namespace: string; key: string }>;
  /** Committed rows whose blobs still sit at the staged path. */
  toPromote: AttachmentRow[];
  /** Blobs no row points at any more. */
  garbage: string[];
}

const NOTHING_DONE: TxnOutcome = { releasedKeys: [], toPromote: [], garbage: [] };

/**
 * Locks the transaction, then every key it holds, in a fixed order, and
 * returns its active leases as they are under those locks. Commit, rollback
 * and joining a transaction start here, so none of them can interleave with
 * another change to the same transaction on any of its keys.
 *
 * Lock order: a transaction's lock always comes before any key lock (the
 * caller must not hold a key lock taken before `tx.lockTxn(txnId)`; taking
 * it again here is harmless). Every change to a transaction's set of leases
 * holds its lock, so under it that set is stable and no other caller can
 * hold one of its keys while waiting for another.
 */
export async function lockTxnKeys(tx: MetadataTx, txnId: string): Promise<LeaseRow[]> {
  await tx.lockTxn(txnId);
  const leases = await tx.listActiveLeasesOfTxn(txnId);
  const keys = [...new Set(leases.map((lease) => `${lease.namespace}\u0000${lease.key}`))].sort();
  for (const id of keys) {
    const [namespace, key] = id.split('\u0000') as [string, string];
    await tx.lockKey(namespace, key);
  }
  return keys.length === 0 ? leases : tx.listActiveLeasesOfTxn(txnId);
}

/**
 * Step 3. Runs inside the caller's metadata transaction; the caller has
 * checked the lease. `locked`: what the caller's own `lockTxnKeys(tx, txnId)`
 * returned in this transaction, so the keys are not locked and read again.
 */
export async function commitTxn(tx: MetadataTx, txnId: string, now: number, locked?: LeaseRow[]): Promise<TxnOutcome> {
  const leases = locked ?? (await lockTxnKeys(tx, txnId));
  if ((await tx.getTxn(txnId))?.state !== 'active') return NOTHING_DONE;
  const staged = await tx.listStagedOfTxn(txnId);
  const garbage: string[] = [];
  const toPromote: AttachmentRow[] = [];
  for (const row of staged) {
    const scope = { namespace: row.namespace, key: row.key };
    const committed = await tx.findByName(scope, row.name, null);
    if (committed) {
      // Delete before the update: a key has at most one committed row per name.
      await tx.deleteAttachment(committed.versionId);
      garbage.push(committed.blobPath);
    }
    if (row.state === 'tombstone') {
      await tx.deleteAttachment(row.versionId);
      continue;
    }
    // `createdAt` is the first version's; `updatedAt` stays the time these
    // bytes were written, so the lease's view and the committed one agree.
    const createdAt = committed?.createdAt ?? row.createdAt;
    // A blob written straight to its committed path has nothing to promote;
    // a staged one kept in the metadata store is promoted here, with its row.
    const target = committedBlobPath(row.namespace, row.key, row.versionId);
    const staged = isStagedPath(row.blobPath);
    const moved = staged && (await tx.moveBlobData?.(row.blobPath, target)) === true;
    await tx.updateAttachment(row.versionId, { state: 'committed', txnId: null, createdAt, ...(moved ? { blobPath: target } : {}) });
    if (staged && !moved) toPromote.push({ ...row, state: 'committed', txnId: null, createdAt });
  }
  const queued = await dropGarbage(tx, garbage, now);
  const releasedKeys = await endLeases(tx, leases, 'released');
  await tx.updateTxn(txnId, { state: 'committed', updatedAt: now });
  return { releasedKeys, toPromote, garbage: queued };
}

/**
 * Drops blobs no row points at any more, in the caller's transaction (the
 * one that dropped the rows): a blob kept in the metadata store goes at once
 * — a read of it takes all its bytes in one statement, so none is cut, and
 * one that finds it gone looks the row up again —; any other is queued as
 * garbage (step 7). Returns the queued paths, for `collectGarbage`.
 */
export async function dropGarbage(tx: MetadataTx, paths: readonly string[], now: number): Promise<string[]> {
  const queued: string[] = [];
  for (const path of paths) {
    if ((await tx.deleteBlobData?.(path)) !== true) queued.push(path);
  }
  await tx.enqueueGarbage(queued, now);
  return queued;
}

/** Rollback: drops the transaction's staged rows and ends its leases. Runs inside the caller's transaction; `locked` as for commitTxn. */
export async function rollbackTxn(
  tx: MetadataTx,
  txnId: string,
  now: number,
  leaseState: Exclude<LeaseState, 'active'>,
  locked?: LeaseRow[],
): Promise<TxnOutcome> {
  const leases = locked ?? (await lockTxnKeys(tx, txnId));
  if ((await tx.getTxn(txnId))?.state !== 'active') return NOTHING_DONE;
  const staged = await tx.listStagedOfTxn(txnId);
  const garbage: string[] = [];
  for (const row of staged) {
    await tx.deleteAttachment(row.versionId);
    if (row.state === 'staged') garbage.push(row.blobPath);
  }
  const queued = await dropGarbage(tx, garbage, now);
  const releasedKeys = await endLeases(tx, leases, leaseState);
  await tx.updateTxn(txnId, { state: 'rolled_back', updatedAt: now });
  return { releasedKeys, toPromote: [], garbage: queued };
}

/**
 * Rolls back a transaction one of whose leases has expired, in the caller's
 * metadata transaction, which must hold no key lock yet. Undefined when
 * nothing is to do (another caller ended it, or no lease of it is expired).
 */
export async function expireTxn(tx: MetadataTx, txnId: string, now: number): Promise<TxnOutcome | undefined> {
  const leases = await lockTxnKeys(tx, txnId);
  if (!leases.some((lease) => lease.expiresAt <= now)) return undefined;
  return rollbackTxn(tx, txnId, now, 'expired', leases);
}

/** Ends leases whose keys the caller has locked. */
async function endLeases(
  tx: MetadataTx,
  leases: readonly LeaseRow[],
  state: Exclude<LeaseState, 'active'>,
): Promise<Array<{ namespace: string; key: string }>> {
  for (const lease of leases) {
    await tx.updateLease(lease.leaseId, { state });
    const keyRow = await tx.lockKey(lease.namespace, lease.key);
    if (keyRow?.leaseId === lease.leaseId) await tx.putKey({ ...keyRow, leaseId: null });
    await tx.announceRelease?.(lease.namespace, lease.key);
  }
  return leases.map(({ namespace, key }) => ({ namespace, key }));
}

/**
 * After the metadata transaction committed (or rolled back): the crash
 * point, then wake-ups, then steps 4–7 queued in the background. The caller
 * answers at once: its outcome is durable, and every row already points at
 * a blob that exists. Failures are left for the sweeper.
 */
export async function finishTxn(engine: EngineContext, outcome: TxnOutcome, committed: boolean): Promise<void> {
  if (committed) engine.crashPoint('commit.after-metadata');
  else engine.crashPoint('rollback.after-metadata');
  for (const { namespace, key } of outcome.releasedKeys) engine.waiters.notify(namespace, key);
  if (outcome.toPromote.length === 0 && outcome.garbage.length === 0) return;
  engine.background.run(async () => {
    for (const row of outcome.toPromote) await promote(engine, row);
    await collectGarbage(engine, outcome.garbage);
  });
}

/** Step 7 in the background, for garbage a staging call queued (a replaced or deleted staged write). */
export function collectGarbageLater(engine: EngineContext, paths: readonly string[]): void {
  if (paths.length === 0) return;
  engine.background.run(() => collectGarbage(engine, paths));
}

/**
 * Steps 4–6 for one row. Idempotent: the sweeper calls it again after a
 * crash, and may run it while this process's background promotes the same
 * row; whichever repoints the row first wins, the other only cleans up.
 */
export async function promote(engine: EngineContext, row: AttachmentRow): Promise<void> {
  if (!isStagedPath(row.blobPath)) return;
  const stagedPath = row.blobPath;
  const target = committedBlobPath(row.namespace, row.key, row.versionId);
  const scope = { namespace: row.namespace, key: row.key };
  try {
    await engine.blobs.copy(stagedPath, target);
  } catch (error) {
    // A concurrent promoter may have repointed the row and deleted the staged blob already.
    const current = await engine.metadata.transaction((tx) => tx.findById(scope, row.attachmentId, null));
    if (current?.versionId === row.versionId && current.blobPath === target) return;
    throw error;
  }
  engine.crashPoint('promote.after-copy');
  const repointed = await engine.metadata.transaction(async (tx) => {
    await tx.lockKey(row.namespace, row.key);
    const current = await tx.findById(scope, row.attachmentId, null);
    if (current?.versionId !== row.versionId) return 'replaced';
    // Promoted meanwhile by a concurrent promoter: `target` is the row's blob now.
    if (current.blobPath === target) return 'promoted';
    if (current.blobPath !== stagedPath) return 'replaced';
    await tx.updateAttachment(row.versionId, { blobPath: target });
    // A read may still stream the staged copy: with a delete grace it is
    // garbage like any other, and outlives such reads.
    if (engine.deleteGraceMs > 0) await tx.enqueueGarbage([stagedPath], engine.now());
    return 'repointed';
  });
  if (repointed === 'replaced') {
    // A later commit replaced or deleted this version meanwhile; its staged
    // blob is that commit's garbage, and our copy belongs to nobody.
    await engine.blobs.delete(target);
    return;
  }
  if (repointed === 'repointed') engine.crashPoint('promote.after-row');
  if (engine.deleteGraceMs === 0) await engine.blobs.delete(stagedPath);
}

/**
 * Step 7. With a delete grace (object stores that cut reads of deleted
 * objects), garbage stays queued and the sweeper deletes it once it is old
 * enough for reads in flight to have finished.
 */
export async function collectGarbage(engine: EngineContext, paths: readonly string[]): Promise<void> {
  if (paths.length === 0 || engine.deleteGraceMs > 0) return;
  for (const path of paths) await engine.blobs.delete(path);
  engine.crashPoint('gc.after-delete');
  await engine.metadata.transaction((tx) => tx.dequeueGarbage(paths));
}
