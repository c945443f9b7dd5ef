// The sweeper finishes whatever a crash or an expired lease left behind:
//  1. expired leases → their transactions roll back;
//  2. committed rows still pointing at a staged blob → promoted;
//  3. queued garbage blobs → deleted (once older than the blob store's
//     delete grace, when it has one);
//  4. blobs no row points at (orphans): staged blobs (state/~staging/) of
//     transactions that are no longer active, and committed-path blobs
//     whose version has no row at all (a promotion copies before it
//     repoints its row);
//  5. the blob store's temp files of writes that never finished;
//  6. resumable uploads that expired or whose transaction ended, with their
//     parts, and parts whose upload is gone (resumable.ts).
// Every step re-checks state in its own transaction, so several sweepers
// (one per server process) may run at once.
import { expireTxn, finishTxn, promote } from './commit.js';
import type { EngineContext } from './engine-context.js';
import { STATE_PREFIX, stagedTxnOf } from './paths.js';
import type { BlobInfo } from './ports.js';
import { sweepUploads } from './resumable.js';
import type { SweepReport } from './types.js';

const BATCH = 200;
/** Blob-store temp files untouched this long are leftovers of a dead process. */
const TEMPORARY_GRACE_MS = 15 * 60 * 1000;
/** Ended leases and transactions are remembered this long, so late callers get precise error codes. */
const HISTORY_MS = 24 * 3600 * 1000;

export async function sweep(engine: EngineContext): Promise<SweepReport> {
  const report: SweepReport = { expiredLeases: 0, rolledBackTxns: 0, promoted: 0, garbageDeleted: 0, orphansDeleted: 0, uploadsDeleted: 0 };
  await expireLeases(engine, report);
  // The rollbacks above queued their garbage deletion in the background; let
  // it finish, so the steps below do not race it for the same blobs.
  await engine.background.settled();
  await finishPromotions(engine, report);
  await deleteGarbage(engine, report);
  await deleteOrphans(engine, report);
  // A write still in progress touches its temp file all the time; one left
  // alone this long belongs to a process that died.
  report.orphansDeleted += (await engine.blobs.purgeTemporary?.(engine.now() - TEMPORARY_GRACE_MS)) ?? 0;
  const uploads = await sweepUploads(engine);
  report.uploadsDeleted = uploads.uploads + uploads.parts;
  await engine.metadata.transaction(async (tx) => {
    const horizon = engine.now() - HISTORY_MS;
    await tx.pruneLeases(horizon);
    await tx.pruneTxns(horizon);
  });
  return report;
}

async function expireLeases(engine: EngineContext, report: SweepReport): Promise<void> {
  for (let round = 0; round < 1000; round++) {
    const expired = await engine.metadata.transaction((tx) => tx.listExpiredLeases(engine.now(), BATCH));
    if (expired.length === 0) return;
    for (const txnId of new Set(expired.map((lease) => lease.txnId))) {
      const outcome = await engine.metadata.transaction((tx) => expireTxn(tx, txnId, engine.now()));
      if (!outcome) continue;
      engine.crashPoint('sweep.after-expire');
      report.rolledBackTxns += 1;
      report.expiredLeases += outcome.releasedKeys.length;
      await finishTxn(engine, outcome, false);
    }
    if (expired.length < BATCH) return;
  }
}

async function finishPromotions(engine: EngineContext, report: SweepReport): Promise<void> {
  const rows = await engine.metadata.transaction((tx) => tx.listUnpromoted(BATCH));
  for (const row of rows) {
    await promote(engine, row);
    report.promoted += 1;
  }
}

async function deleteGarbage(engine: EngineContext, report: SweepReport): Promise<void> {
  for (let round = 0; round < 1000; round++) {
    // Garbage younger than the delete grace may still be streamed by a read.
    const enqueuedBefore = engine.deleteGraceMs > 0 ? engine.now() - engine.deleteGraceMs : undefined;
    const paths = await engine.metadata.transaction((tx) => tx.listGarbage(BATCH, enqueuedBefore));
    if (paths.length === 0) return;
    // A queued path might have been re-referenced only through a bug; never
    // delete a blob that a row points at.
    const referenced = await engine.metadata.transaction((tx) => tx.referencedBlobPaths(paths));
    const deletable = paths.filter((path) => !referenced.has(path));
    for (const path of deletable) await engine.blobs.delete(path);
    engine.crashPoint('sweep.after-garbage-delete');
    await engine.metadata.transaction((tx) => tx.dequeueGarbage(paths));
    report.garbageDeleted += deletable.length;
    if (paths.length < BATCH) return;
  }
}

async function deleteOrphans(engine: EngineContext, report: SweepReport): Promise<void> {
  let batch: BlobInfo[] = [];
  const flush = async () => {
    const candidates = batch;
    batch = [];
    const paths = candidates.map((blob) => blob.path);
    const { referenced, queued, versions } = await engine.metadata.transaction(async (tx) => ({
      referenced: await tx.referencedBlobPaths(paths),
      // Queued garbage is deleted by step 3, after its delete grace.
      queued: engine.deleteGraceMs > 0 ? await tx.queuedGarbage(paths) : new Set<string>(),
      versions: await tx.existingVersionIds(
        candidates.filter((blob) => stagedTxnOf(blob.path) === undefined).map((blob) => versionOf(blob.path)),
      ),
    }));
    const orphans: string[] = [];
    for (const blob of candidates) {
      if (referenced.has(blob.path) || queued.has(blob.path)) continue;
      const txnId = stagedTxnOf(blob.path);
      if (txnId !== undefined) {
        const txn = await engine.metadata.transaction((tx) => tx.getTxn(txnId));
        if (txn?.state === 'active') continue; // an upload of a live transaction may still record it
      } else if (versions.has(versionOf(blob.path))) {
        // The promotion target of a row that still exists: a promotion links
        // the blob here before it repoints the row (and a hard link keeps
        // the upload's old mtime, so no age check could tell).
        continue;
      } else if (engine.orphanGraceMs > 0 && (blob.modifiedAt ?? Infinity) > engine.now() - engine.orphanGraceMs) {
        continue;
      }
      orphans.push(blob.path);
    }
    for (const path of orphans) await engine.blobs.delete(path);
    report.orphansDeleted += orphans.length;
  };
  for await (const blob of engine.blobs.list(STATE_PREFIX)) {
    batch.push(blob);
    if (batch.length >= BATCH) await flush();
  }
  if (batch.length > 0) await flush();
}

/** The version id a blob is named by (the last path segment). */
function versionOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
