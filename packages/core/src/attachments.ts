// Attachment operations: staging uploads under a lease, the overlay view a
// lease sees (committed + its own staged writes and deletes), public reads,
// and staged deletes.
import { collectGarbageLater, dropGarbage } from './commit.js';
import { encryptedSize, keyUnavailable } from './crypto.js';
import type { EngineContext } from './engine-context.js';
import { AttacheError } from './errors.js';
import type { Digests } from './hash.js';
import { newId } from './ids.js';
import { normalizeMediaType } from './media-type.js';
import { withLease } from './lease.js';
import type { CheckedCredentials } from './lease-rules.js';
import { checkName, extensionOf } from './names.js';
import { committedBlobPath, stagedBlobPath } from './paths.js';
import type { AttachmentRow, AttachmentScope, MetadataTx } from './ports.js';
import { abortable, emptyStream, meter, toReadableStream } from './streams.js';
import type {
  AttachAllResult,
  Attachment,
  AttachOptions,
  AttachmentSelector,
  OpenedAttachment,
  OpenOptions,
} from './types.js';

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

export function toAttachment(row: AttachmentRow): Attachment {
  return {
    id: row.attachmentId,
    name: row.name,
    namespace: row.namespace,
    key: row.key,
    size: row.size,
    contentType: row.contentType,
    extension: row.extension,
    crc32: row.crc32,
    sha256: row.sha256,
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
  };
}

/** Internal upload options: `attachmentId` fixes the id of a new attachment, `freshKey` skips a lookup (the document face). */
export interface StageOptions extends AttachOptions {
  attachmentId?: string;
  /**
   * The key was first leased by this very transaction and holds nothing (a
   * document): the metadata read before streaming, which finds an
   * attachment to overwrite, is skipped. Saves one metadata transaction.
   */
  freshKey?: boolean;
  onProgress?: (bytesSoFar: number) => void | Promise<void>;
  /**
   * The bytes are already durable in this blob, with these digests: the
   * new blob is made from it by the blob store's `copy`, and `body` is
   * cancelled unread.
   */
  storedBlob?: StoredBlob;
}

/** A blob holding an attachment's bytes already (as plaintext, or encrypted under `keyId` with `versionId`). */
export interface StoredBlob extends Digests {
  path: string;
  versionId: string;
  keyId: string | null;
  size: number;
}

/** An upload whose blob is durable but whose row is not written yet. */
export interface PreparedUpload {
  row: AttachmentRow;
  preventOverwrite: boolean;
}

type PartOutcome = { noop: AttachmentRow } | { prepared: PreparedUpload };

function effectiveMaxBytes(engine: EngineContext, requested: number | undefined): number {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 0)) {
    throw new AttacheError('invalid_max_bytes', 'maxBytes must be a non-negative integer');
  }
  if (!requested) return engine.maxBytes;
  return engine.maxBytes === 0 ? requested : Math.min(requested, engine.maxBytes);
}

/**
 * The stored type: canonical when it is a valid media type (HTTP uploads
 * always are). Through the TS API an invalid one is kept as given — it is
 * the caller's data — and downloads serve it as application/octet-stream.
 */
function normalizeContentType(contentType: string | undefined): string {
  const value = contentType?.trim();
  return value ? (normalizeMediaType(value) ?? value) : DEFAULT_CONTENT_TYPE;
}

/**
 * Stages every part as one unit: each part's bytes go to a staged blob as
 * they arrive (hashed in the same pass); only once all of them are durable
 * are their rows written, in one metadata transaction. Any failure deletes
 * the blobs written so far, so all parts are staged or none is.
 */
export async function stageAll(
  engine: EngineContext,
  credentials: CheckedCredentials,
  parts: AsyncIterable<StageOptions> | Iterable<StageOptions>,
): Promise<AttachAllResult> {
  const outcomes: PartOutcome[] = [];
  // One part, known up front: its row is written the moment its blob is
  // durable, so the blob may go straight to its committed path (see
  // preparePart). With more, earlier blobs wait for later uploads, however
  // long they take, and only a staged path (kept while the transaction
  // lives) protects them from the orphan scan meanwhile.
  const direct = Array.isArray(parts) && parts.length === 1;
  try {
    for await (const part of parts) outcomes.push(await preparePart(engine, credentials, part, direct));
    if (outcomes.length === 0) throw new AttacheError('invalid_argument', 'parts is empty: nothing to attach');
  } catch (error) {
    await discardBlobs(engine, outcomes);
    throw error;
  }
  return recordStaged(engine, credentials, outcomes);
}

/**
 * Stages uploads whose blobs `writeUpload` wrote already, like `stageAll`
 * (one metadata transaction; their blobs are deleted when it fails).
 */
export function stageWritten(
  engine: EngineContext,
  credentials: CheckedCredentials,
  written: readonly PreparedUpload[],
): Promise<AttachAllResult> {
  return recordStaged(
    engine,
    credentials,
    written.map((prepared) => ({ prepared })),
  );
}

async function recordStaged(engine: EngineContext, credentials: CheckedCredentials, outcomes: PartOutcome[]): Promise<AttachAllResult> {
  try {
    engine.crashPoint('upload.after-blob');
    const { rows, garbage } = await withLease(engine, credentials, async (tx, lease, now) => {
      const written: AttachmentRow[] = [];
      const replaced: string[] = [];
      for (const outcome of outcomes) {
        if ('noop' in outcome) {
          written.push(outcome.noop);
          continue;
        }
        const row = await insertStagedRow(tx, outcome.prepared, lease.txnId, replaced);
        written.push(row);
      }
      return { rows: written, garbage: await dropGarbage(tx, replaced, now) };
    });
    engine.crashPoint('upload.after-row');
    collectGarbageLater(engine, garbage);
    return {
      attachments: rows.map(toAttachment),
      noop: outcomes.every((outcome) => 'noop' in outcome),
    };
  } catch (error) {
    await discardBlobs(engine, outcomes);
    throw error;
  }
}

async function discardBlobs(engine: EngineContext, outcomes: readonly PartOutcome[]): Promise<void> {
  for (const outcome of outcomes) {
    if ('prepared' in outcome) await engine.blobs.delete(outcome.prepared.row.blobPath).catch(() => {});
  }
}

/**
 * Streams one part to a new blob, or finds it is a no-op (`preventOverwrite`)
 * without reading it. The blob goes to the staged path, or with `direct` to
 * the version's committed path: a version's blob is new and only its own row
 * will ever point at it, so a commit then has nothing to promote (no copy),
 * and a rollback queues it as garbage like a staged one. A crash before its
 * row is written leaves an orphan the sweeper deletes after the orphan grace.
 */
async function preparePart(
  engine: EngineContext,
  credentials: CheckedCredentials,
  part: StageOptions,
  direct: boolean,
): Promise<PartOutcome> {
  const name = checkName(part.name);
  effectiveMaxBytes(engine, part.maxBytes); // refused before the lookup, like a bad name
  type Plan = { noop: AttachmentRow } | { scope: AttachmentScope; txnId: string; attachmentId: string | undefined };
  const plan: Plan = part.freshKey
    ? // Nothing to look up: the lease is checked when the row is written.
      { scope: { namespace: credentials.namespace, key: credentials.key }, txnId: credentials.txnId, attachmentId: undefined }
    : await withLease(engine, credentials, async (tx, lease): Promise<Plan> => {
        const scope = { namespace: lease.namespace, key: lease.key };
        const previous = await tx.findByName(scope, name, lease.txnId);
        const visible = previous?.state === 'tombstone' ? undefined : previous;
        if (part.preventOverwrite && visible) return { noop: visible };
        // The look-up above sees committed rows too: none there means none committed.
        const committed = previous === undefined || previous.txnId === null ? previous : await tx.findByName(scope, name, null);
        return { scope, txnId: lease.txnId, attachmentId: committed?.attachmentId ?? visible?.attachmentId };
      });
  if ('noop' in plan) {
    await cancelBody(part.body);
    return { noop: plan.noop };
  }
  const { txnId, scope } = plan;
  return {
    prepared: await writeUpload(engine, part, {
      scope,
      txnId,
      attachmentId: plan.attachmentId,
      blobPathOf: (versionId) =>
        direct ? committedBlobPath(scope.namespace, scope.key, versionId) : stagedBlobPath(txnId, versionId),
    }),
  };
}

/** Where `writeUpload` puts a part's bytes, and whose row it prepares. */
export interface UploadTarget {
  scope: AttachmentScope;
  /** The transaction the row will be staged in; null for a document whose row is written committed. */
  txnId: string | null;
  /** The attachment the bytes are a new version of; a new id when undefined (and the part names none). */
  attachmentId: string | undefined;
  blobPathOf(versionId: string): string;
}

/**
 * Streams one part's bytes to a new durable blob at `target`: hashed as they
 * pass (CRC-32, SHA-256 of the plaintext), checked against the caller's
 * limits and checksums, encrypted when the store is. The row is returned,
 * not written; on any failure the blob is deleted.
 */
export async function writeUpload(engine: EngineContext, part: StageOptions, target: UploadTarget): Promise<PreparedUpload> {
  const name = checkName(part.name);
  const maxBytes = effectiveMaxBytes(engine, part.maxBytes);
  const stored = part.storedBlob
    ? await adoptStoredBlob(engine, target, part.storedBlob, part.body, maxBytes)
    : await streamToBlob(engine, target, part, maxBytes);
  try {
    const { size, crc32, sha256 } = stored;
    if (part.expectedSize !== undefined && size !== part.expectedSize) {
      throw new AttacheError('size_mismatch', `received ${size} bytes, expected ${part.expectedSize}`);
    }
    if (part.expectedCrc32 !== undefined && part.expectedCrc32.toLowerCase() !== crc32) {
      throw new AttacheError('checksum_mismatch', `CRC-32 is ${crc32}, expected ${part.expectedCrc32.toLowerCase()}`);
    }
    if (part.expectedSha256 !== undefined && part.expectedSha256.toLowerCase() !== sha256) {
      throw new AttacheError('checksum_mismatch', `SHA-256 is ${sha256}, expected ${part.expectedSha256.toLowerCase()}`);
    }
    const now = engine.now();
    return {
      preventOverwrite: part.preventOverwrite ?? false,
      row: {
        versionId: stored.versionId,
        attachmentId: target.attachmentId ?? part.attachmentId ?? newId(),
        namespace: target.scope.namespace,
        key: target.scope.key,
        name,
        state: target.txnId === null ? 'committed' : 'staged',
        txnId: target.txnId,
        size,
        contentType: normalizeContentType(part.contentType),
        extension: part.extension === undefined ? extensionOf(name) : part.extension,
        crc32,
        sha256,
        blobPath: stored.blobPath,
        keyId: stored.keyId,
        createdAt: now,
        updatedAt: now,
      },
    };
  } catch (error) {
    await engine.blobs.delete(stored.blobPath).catch(() => {});
    throw error;
  }
}

/** A durable new blob, with what its row records of it. */
interface WrittenBlob extends Digests {
  versionId: string;
  blobPath: string;
  keyId: string | null;
  size: number;
}

/** Streams the part's body into a new blob at `target`, hashing it as plaintext (then encrypting when the store does). */
async function streamToBlob(engine: EngineContext, target: UploadTarget, part: StageOptions, maxBytes: number): Promise<WrittenBlob> {
  const versionId = newId();
  const blobPath = target.blobPathOf(versionId);
  const metered = meter(toReadableStream(part.body), {
    maxBytes,
    expectedSize: part.expectedSize,
    onProgress: part.onProgress,
  });
  // Hashed as plaintext (size, CRC-32, SHA-256 and ETag are the plaintext's), then encrypted.
  const keyId = engine.keyring?.activeKeyId ?? null;
  const bytesToStore = engine.keyring ? metered.stream.pipeThrough(engine.keyring.encrypt(versionId)) : metered.stream;
  try {
    // Every caller writes the blob's row next (staged, or committed for a lone document), durably.
    const stored = await engine.blobs.put(blobPath, bytesToStore, { metadataWriteFollows: true, ...(part.signal ? { signal: part.signal } : {}) });
    const digests = metered.result();
    const expectedStored = keyId === null ? digests.size : encryptedSize(digests.size, keyId);
    if (stored.size !== expectedStored) {
      throw new AttacheError('internal', `blob store stored ${stored.size} of ${expectedStored} bytes`);
    }
    return { versionId, blobPath, keyId, ...digests };
  } catch (error) {
    await engine.blobs.delete(blobPath).catch(() => {});
    throw error;
  }
}

/**
 * Makes the new blob from bytes already durable in the store (a resumable
 * upload's only part) with the store's `copy` — a hard link on fs, a
 * server-side copy on S3 — instead of streaming them again. The version id
 * is the stored blob's own: with encryption at rest its ciphertext is bound
 * to it.
 */
async function adoptStoredBlob(
  engine: EngineContext,
  target: UploadTarget,
  stored: StoredBlob,
  body: StageOptions['body'],
  maxBytes: number,
): Promise<WrittenBlob> {
  await cancelBody(body);
  if (maxBytes > 0 && stored.size > maxBytes) throw new AttacheError('attachment_too_large', `attachment is larger than ${maxBytes} bytes`);
  const blobPath = target.blobPathOf(stored.versionId);
  try {
    await engine.blobs.copy(stored.path, blobPath);
  } catch (error) {
    await engine.blobs.delete(blobPath).catch(() => {});
    throw error;
  }
  const { path: _from, ...described } = stored;
  return { ...described, blobPath };
}

async function insertStagedRow(
  tx: MetadataTx,
  prepared: PreparedUpload,
  txnId: string,
  replaced: string[],
): Promise<AttachmentRow> {
  const { row } = prepared;
  const scope = { namespace: row.namespace, key: row.key };
  const previous = await tx.findByName(scope, row.name, txnId);
  // As in preparePart: no row at all means no committed one either.
  const committed = previous === undefined || previous.txnId === null ? previous : await tx.findByName(scope, row.name, null);
  // Re-checked here: a parallel upload of the same name may have won the race.
  if (prepared.preventOverwrite && previous && previous.state !== 'tombstone') {
    replaced.push(row.blobPath);
    return previous;
  }
  if (previous && previous.txnId === txnId) {
    await tx.deleteAttachment(previous.versionId);
    if (previous.state === 'staged') replaced.push(previous.blobPath);
  }
  const attachmentId = committed?.attachmentId ?? (previous?.txnId === txnId ? previous.attachmentId : row.attachmentId);
  const inserted: AttachmentRow = { ...row, attachmentId, state: 'staged', txnId };
  await tx.insertAttachment(inserted);
  return inserted;
}

async function cancelBody(body: StageOptions['body']): Promise<void> {
  if (body instanceof ReadableStream) await body.cancel().catch(() => {});
  else if (!(body instanceof Uint8Array)) {
    await (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]().return?.();
  }
}

/** The row a reader sees: with a txn, its staged writes and deletes overlay the committed rows. `selector` arrives checked. */
export async function findVisible(
  tx: MetadataTx,
  scope: AttachmentScope,
  selector: AttachmentSelector,
  txnId: string | null,
): Promise<AttachmentRow | undefined> {
  const row =
    selector.name !== undefined
      ? await tx.findByName(scope, selector.name, txnId)
      : await tx.findById(scope, selector.id, txnId);
  return row && row.state !== 'tombstone' ? row : undefined;
}

export async function listVisible(tx: MetadataTx, scope: AttachmentScope, txnId: string | null): Promise<AttachmentRow[]> {
  const rows = await tx.listAttachments(scope, txnId ?? undefined);
  const byName = new Map<string, AttachmentRow>();
  for (const row of rows) if (row.txnId === null) byName.set(row.name, row);
  for (const row of rows) if (row.txnId !== null) byName.set(row.name, row);
  return [...byName.values()]
    .filter((row) => row.state !== 'tombstone')
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Stages the delete of one visible attachment; a staged write of it is dropped at once. */
async function stageDelete(tx: MetadataTx, row: AttachmentRow, txnId: string, now: number, garbage: string[]): Promise<void> {
  const scope = { namespace: row.namespace, key: row.key };
  if (row.txnId === txnId) {
    await tx.deleteAttachment(row.versionId);
    garbage.push(row.blobPath);
  }
  const committed = row.txnId === null ? row : await tx.findByName(scope, row.name, null);
  if (!committed) return;
  await tx.insertAttachment({
    ...committed,
    versionId: newId(),
    state: 'tombstone',
    txnId,
    blobPath: '',
    createdAt: now,
    updatedAt: now,
  });
}

export async function deleteStaged(
  engine: EngineContext,
  credentials: CheckedCredentials,
  selector: AttachmentSelector | 'all',
): Promise<number> {
  const { count, garbage } = await withLease(engine, credentials, async (tx, lease, now) => {
    const scope = { namespace: lease.namespace, key: lease.key };
    const rows =
      selector === 'all'
        ? await listVisible(tx, scope, lease.txnId)
        : [await findVisible(tx, scope, selector, lease.txnId)].filter((row) => row !== undefined);
    const dropped: string[] = [];
    for (const row of rows) await stageDelete(tx, row, lease.txnId, now, dropped);
    return { count: rows.length, garbage: await dropGarbage(tx, dropped, now) };
  });
  engine.crashPoint('delete.after-metadata');
  collectGarbageLater(engine, garbage);
  return count;
}

/** Drops this transaction's staged row (write or delete) of one attachment, if any. `selector` arrives checked. */
export async function unstage(
  engine: EngineContext,
  credentials: CheckedCredentials,
  selector: AttachmentSelector,
): Promise<boolean> {
  const garbage = await withLease(engine, credentials, async (tx, lease, now) => {
    const scope = { namespace: lease.namespace, key: lease.key };
    const row =
      selector.name !== undefined
        ? await tx.findByName(scope, selector.name, lease.txnId)
        : await tx.findById(scope, selector.id, lease.txnId);
    if (!row || row.txnId !== lease.txnId) return undefined;
    await tx.deleteAttachment(row.versionId);
    return dropGarbage(tx, row.state === 'staged' ? [row.blobPath] : [], now);
  });
  if (garbage) collectGarbageLater(engine, garbage);
  return garbage !== undefined;
}

/** Resolves a range against a size: inclusive bounds, clamped end; start past the end → 416. */
export function resolveRange(
  range: OpenOptions['range'],
  size: number,
): { start: number; end: number } | null {
  if (!range) return null;
  const { start } = range;
  if (!Number.isInteger(start) || start < 0 || (range.end !== undefined && (!Number.isInteger(range.end) || range.end < start))) {
    throw new AttacheError('range_not_satisfiable', 'range must be whole numbers with 0 ≤ start ≤ end');
  }
  if (start >= size) throw new AttacheError('range_not_satisfiable', `range starts at ${start}, size is ${size}`);
  return { start, end: Math.min(range.end ?? size - 1, size - 1) };
}

/**
 * Opens the bytes of a row found by `find`. If the blob vanished between
 * reading the row and opening it (promotion moved it, or a commit replaced
 * the version), the row is read again once.
 */
export async function openRow(
  engine: EngineContext,
  find: () => Promise<AttachmentRow | undefined>,
  options: OpenOptions = {},
): Promise<OpenedAttachment> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const row = await find();
    if (!row) throw new AttacheError('attachment_not_found', 'attachment not found');
    const range = resolveRange(options.range, row.size);
    options.signal?.throwIfAborted();
    const body = await openBytes(engine, row, range);
    if (body) return { attachment: toAttachment(row), range, body: abortable(body, options.signal) };
  }
  throw new AttacheError('unavailable', 'attachment bytes are moving; retry', { retryAfterSeconds: 1 });
}

/**
 * The plaintext of a row, or of a range of it (sizes and ranges are always
 * the plaintext's); undefined when its blob is gone. A row written with a
 * key id is decrypted — never served as ciphertext, so without that key the
 * read fails with `key_unavailable`. Rows without one were stored in
 * plaintext (before encryption was enabled) and are read as they are.
 */
export async function openBytes(
  engine: EngineContext,
  row: AttachmentRow,
  range: { start: number; end: number } | null,
): Promise<ReadableStream<Uint8Array> | undefined> {
  const { keyId } = row;
  if (keyId !== null && !engine.keyring?.has(keyId)) throw keyUnavailable(keyId);
  if (row.size === 0) return emptyStream();
  if (keyId === null || !engine.keyring) return engine.blobs.get(row.blobPath, range ?? undefined);
  return engine.keyring.open(
    { versionId: row.versionId, keyId, size: row.size },
    (blobRange) => engine.blobs.get(row.blobPath, blobRange),
    range ?? undefined,
  );
}
