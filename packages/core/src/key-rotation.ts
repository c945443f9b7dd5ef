// Key rotation (DESIGN.md "Encryption at rest"): re-encrypts every committed
// object that is not under the active key, one object at a time, beside
// readers and writers. For each object, top to bottom:
//
//   1. a committed row not under the active key (paged by version id; a row
//      whose promotion is unfinished is promoted first)
//   2. its bytes streamed: decrypted (or read as plaintext), checked against
//      the row's size, SHA-256 and CRC-32, encrypted under the active key,
//      written to a NEW blob path beside the old one           [rotate.after-blob]
//   3. ONE metadata transaction: the row switches to the new blob and key
//      only if it still points at the old blob, and the old blob is queued
//      as garbage                                               [rotate.after-row]
//   4. the row changed meanwhile (deleted, overwritten): the newer state
//      wins and the new blob, which no row ever pointed at, is deleted
//
// Readers never wait: one that opened the old blob keeps streaming it (it is
// only queued as garbage; a later sweep deletes it), one that reads the row
// after step 3 gets the new blob. A crash after step 2 leaves a blob no row
// points at, named by no version id, which the orphan scan removes; a crash
// after step 3 leaves queued garbage. Either way a rerun finds whatever is
// still under an old key and starts those objects again.
import { openBytes, toAttachment } from './attachments.js';
import { promote } from './commit.js';
import { encryptedSize } from './crypto.js';
import type { EngineContext } from './engine-context.js';
import { AttacheError, isAttacheError } from './errors.js';
import { newId } from './ids.js';
import { isStagedPath, rotatedBlobPath } from './paths.js';
import type { AttachmentRow, NotOnKeyQuery } from './ports.js';
import { abortable, meter } from './streams.js';
import type { KeyRotationFailure, KeyRotationProgress, KeyRotationReport, RotateKeysOptions } from './types.js';

const DEFAULT_BATCH_SIZE = 100;

type Outcome = 'rotated' | 'superseded' | { failure: KeyRotationFailure };

export async function rotateKeys(engine: EngineContext, options: RotateKeysOptions = {}): Promise<KeyRotationReport> {
  const { keyring } = engine;
  if (!keyring) throw new AttacheError('invalid_argument', 'rotateKeys needs encryption at rest configured (the `encryption` store option)');
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new AttacheError('invalid_argument', 'batchSize must be a whole number ≥ 1');
  const query: NotOnKeyQuery = { keyId: keyring.activeKeyId, includePlaintext: options.encryptPlaintext ?? true };
  const { signal } = options;
  signal?.throwIfAborted();

  const total = await engine.metadata.transaction((tx) => tx.countNotOnKey(query));
  const report: KeyRotationReport = {
    activeKeyId: keyring.activeKeyId,
    totalObjects: total.rows,
    totalBytes: total.bytes,
    doneObjects: 0,
    doneBytes: 0,
    rotated: 0,
    rotatedBytes: 0,
    superseded: 0,
    failed: [],
    remaining: 0,
  };
  const progress = async (): Promise<void> => {
    if (!options.onProgress) return;
    const snapshot: KeyRotationProgress = {
      activeKeyId: report.activeKeyId,
      totalObjects: Math.max(report.totalObjects, report.doneObjects),
      totalBytes: Math.max(report.totalBytes, report.doneBytes),
      doneObjects: report.doneObjects,
      doneBytes: report.doneBytes,
    };
    await options.onProgress(snapshot);
  };
  await progress();

  let afterVersionId: string | null = null;
  for (;;) {
    const page = await engine.metadata.transaction((tx) => tx.listNotOnKey({ ...query, afterVersionId, limit: batchSize }));
    if (page.length === 0) break;
    for (const row of page) {
      signal?.throwIfAborted();
      const bytesBefore = report.doneBytes;
      const outcome = await rotateOne(engine, row, signal, (bytesSoFar) => {
        report.doneBytes = bytesBefore + bytesSoFar;
        return progress();
      });
      report.doneBytes = bytesBefore + row.size;
      report.doneObjects += 1;
      if (outcome === 'rotated') {
        report.rotated += 1;
        report.rotatedBytes += row.size;
      } else if (outcome === 'superseded') report.superseded += 1;
      else report.failed.push(outcome.failure);
      await progress();
    }
    afterVersionId = page[page.length - 1]!.versionId;
  }
  report.totalObjects = Math.max(report.totalObjects, report.doneObjects);
  report.totalBytes = Math.max(report.totalBytes, report.doneBytes);
  report.remaining = (await engine.metadata.transaction((tx) => tx.countNotOnKey(query))).rows;
  return report;
}

/**
 * Steps 1–4 for one row. An error reading or writing this object's bytes
 * becomes its failure; an abort, or a metadata store that fails, ends the
 * rotation (a rerun resumes).
 */
async function rotateOne(
  engine: EngineContext,
  listed: AttachmentRow,
  signal: AbortSignal | undefined,
  onBytes: (bytesSoFar: number) => Promise<void>,
): Promise<Outcome> {
  let row: AttachmentRow | undefined = listed;
  let newBlob: string;
  try {
    if (isStagedPath(row.blobPath)) {
      // Committed, but its promotion has not run yet: finish it (idempotent), then rotate the promoted blob.
      await promote(engine, row);
      row = await currentRow(engine, row);
      if (!row) return 'superseded';
    }
    newBlob = await writeReencrypted(engine, row, signal, onBytes);
  } catch (error) {
    if (signal?.aborted || isAttacheError(error, 'unavailable')) throw error;
    return failureOf(engine, row ?? listed, error);
  }
  engine.crashPoint('rotate.after-blob');
  const from = row;
  const activeKeyId = engine.keyring!.activeKeyId;
  let repointed: boolean;
  try {
    repointed = await engine.metadata.transaction(async (tx) => {
      const done = await tx.repointEncrypted(from.versionId, { fromBlobPath: from.blobPath, toBlobPath: newBlob, keyId: activeKeyId });
      if (done) await tx.enqueueGarbage([from.blobPath], engine.now());
      return done;
    });
  } catch (error) {
    await engine.blobs.delete(newBlob).catch(() => {});
    throw error;
  }
  if (!repointed) {
    // Deleted or overwritten meanwhile: no row ever pointed at the new blob.
    await engine.blobs.delete(newBlob).catch(() => {});
    return 'superseded';
  }
  engine.crashPoint('rotate.after-row');
  return 'rotated';
}

/** A read that failed because the object was deleted or overwritten meanwhile is no failure: the newer state won. */
async function failureOf(engine: EngineContext, row: AttachmentRow, error: unknown): Promise<Outcome> {
  const current = await currentRow(engine, row);
  if (!current || current.blobPath !== row.blobPath) return 'superseded';
  const attachment = toAttachment(current);
  return {
    failure: {
      attachmentId: attachment.id,
      namespace: attachment.namespace,
      key: attachment.key,
      name: attachment.name,
      keyId: current.keyId,
      code: isAttacheError(error) ? error.code : 'internal',
      message: error instanceof Error ? error.message : String(error),
    },
  };
}

/** The committed row of this very version now, or undefined when it was deleted or replaced. */
async function currentRow(engine: EngineContext, row: AttachmentRow): Promise<AttachmentRow | undefined> {
  const current = await engine.metadata.transaction((tx) =>
    tx.findById({ namespace: row.namespace, key: row.key }, row.attachmentId, null),
  );
  return current?.versionId === row.versionId ? current : undefined;
}

/** Step 2: the object's plaintext, verified against its row, encrypted under the active key into a new blob. Returns its path. */
async function writeReencrypted(
  engine: EngineContext,
  row: AttachmentRow,
  signal: AbortSignal | undefined,
  onBytes: (bytesSoFar: number) => Promise<void>,
): Promise<string> {
  const keyring = engine.keyring!;
  const plaintext = await openBytes(engine, row, null);
  if (!plaintext) throw new AttacheError('internal', `the blob of version ${row.versionId} is missing`);
  const checked = meter(abortable(plaintext, signal), { maxBytes: 0, onProgress: onBytes });
  // The same version id: the data key and every segment stay bound to this row.
  const path = rotatedBlobPath(row.namespace, row.key, row.versionId, newId());
  let stored: { size: number };
  try {
    // The row is repointed at it next, durably (rotateOne): that commit makes a small inline blob durable too.
    stored = await engine.blobs.put(path, checked.stream.pipeThrough(keyring.encrypt(row.versionId)), { metadataWriteFollows: true, ...(signal ? { signal } : {}) });
  } catch (error) {
    await engine.blobs.delete(path).catch(() => {});
    throw error;
  }
  const { size, sha256, crc32 } = checked.result();
  const problem =
    size !== row.size
      ? `holds ${size} bytes, its row says ${row.size}`
      : sha256 !== row.sha256 || crc32 !== row.crc32
        ? 'does not match the SHA-256 and CRC-32 of its row'
        : stored.size !== encryptedSize(size, keyring.activeKeyId)
          ? `was stored as ${stored.size} bytes, expected ${encryptedSize(size, keyring.activeKeyId)}`
          : undefined;
  if (problem !== undefined) {
    await engine.blobs.delete(path).catch(() => {});
    throw new AttacheError('checksum_mismatch', `version ${row.versionId} ${problem}; left as it was`);
  }
  return path;
}
