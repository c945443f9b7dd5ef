// Resumable uploads (the engine side of tus, `http/tus.ts`): an upload is
// created with its total length, receives its bytes over any number of
// requests, and becomes an attachment when the last byte arrived — a
// committed document (document face) or a staged attachment of a lease's
// transaction (lease face).
//
// Where things are:
//  - the upload's state (offset, running CRC-32, lease binding, expiry) is a
//    row of the metadata store, so any server instance can take the next
//    request;
//  - each request's bytes are a blob of their own, a *part*
//    (`uploads/<upload id>.<start>.<token>`). A part is durable (the blob
//    store's `put` contract) before it is recorded, and recording is a
//    compare-and-set on the offset: of two requests that started at the same
//    offset exactly one is recorded, the other's part is deleted. No two
//    writers ever touch the same object, so bytes never interleave, and any
//    blob store works unchanged (fs, memory, S3, R2);
//  - when the last part is recorded, the parts are read back in order and
//    streamed into the ordinary upload path (`createDocuments` / `stageAll`),
//    which hashes (SHA-256, CRC-32), encrypts when configured and writes the
//    attachment's blob. The running CRC-32 recorded with every part must
//    equal the CRC-32 of the assembled bytes, so a part lost or altered in
//    storage fails the upload instead of producing a wrong attachment.
//
// Parts live outside `state/`, so the attachment sweeper never mistakes one
// for an orphan; the upload sweeper (`sweepUploads`) deletes expired and
// abandoned uploads with their parts.
import { stageAll, type StoredBlob } from './attachments.js';
import { encryptedSize, keyUnavailable } from './crypto.js';
import { createDocuments, type DocumentSettings } from './documents.js';
import type { EngineContext } from './engine-context.js';
import { AttacheError, isAttacheError } from './errors.js';
import { bytesToHex, crc32Continue, createChecksum, toHex32, type ChecksumAlgorithm } from './hash.js';
import { newId } from './ids.js';
import { withLease } from './lease.js';
import type { CheckedCredentials } from './lease-rules.js';
import type { UploadPartRow, UploadRow } from './ports.js';
import type { Attachment, UploadBinding } from './types.js';

export const UPLOADS_PREFIX = 'uploads/';

export interface ResumableSettings {
  documents: DocumentSettings;
  /** An upload untouched this long is forgotten with its bytes. */
  expiryMs: number;
}

/** A new upload, its arguments checked by the caller (the HTTP layer). */
export interface NewUpload {
  length: number;
  name: string;
  contentType: string;
  /** Echoed back on status requests (tus `Upload-Metadata`). */
  metadata: string;
  /** Lease face: stage into this lease's transaction. */
  lease?: CheckedCredentials;
  /** Document face: the namespace (checked). */
  documentNamespace: string;
}

export interface UploadStatus {
  uploadId: string;
  length: number;
  offset: number;
  metadata: string;
  expiresAt: number;
  namespace: string;
  key: string | null;
  /** Once the last byte arrived and the attachment is written (or being written by another request). */
  complete: boolean;
  /** The attachment's id, once written. */
  attachmentId: string | null;
}

export interface AppendOptions {
  /** Where the client says its bytes start; must equal the upload's offset. */
  offset: number;
  body: ReadableStream<Uint8Array> | null;
  /** tus `Upload-Checksum`: the digest the body must have; a mismatch discards the body. */
  checksum?: { algorithm: ChecksumAlgorithm; digest: Uint8Array };
  /** Aborts (the client left): the bytes received so far are kept, unless a checksum was given. */
  signal?: AbortSignal;
}

const PARTS_OF = (uploadId: string) => `${UPLOADS_PREFIX}${uploadId}.`;
/** Codes that mean the lease an upload is bound to is over: the upload can never finish. */
const LEASE_OVER = new Set(['lease_required', 'lease_expired', 'fencing_mismatch', 'txn_mismatch', 'txn_rolled_back']);
const BATCH = 200;

function statusOf(row: UploadRow, complete = row.state === 'done'): UploadStatus {
  return {
    uploadId: row.uploadId,
    length: row.length,
    offset: row.offset,
    metadata: row.metadata,
    expiresAt: row.expiresAt,
    namespace: row.namespace,
    key: row.key,
    complete,
    attachmentId: row.state === 'done' ? row.attachmentId : null,
  };
}

function credentialsOf(row: UploadRow): CheckedCredentials | undefined {
  if (row.key === null || row.leaseId === null || row.txnId === null) return undefined;
  const credentials: CheckedCredentials = { namespace: row.namespace, key: row.key, leaseId: row.leaseId, txnId: row.txnId };
  if (row.fencingToken !== null) credentials.fencingToken = row.fencingToken;
  return credentials;
}

export async function createUpload(engine: EngineContext, settings: ResumableSettings, upload: NewUpload): Promise<UploadStatus> {
  if (engine.maxBytes > 0 && upload.length > engine.maxBytes) {
    throw new AttacheError('attachment_too_large', `Upload-Length ${upload.length} is above this server's limit of ${engine.maxBytes} bytes`);
  }
  const now = engine.now();
  const row: UploadRow = {
    uploadId: newId(),
    state: 'receiving',
    length: upload.length,
    offset: 0,
    crc32: toHex32(0),
    name: upload.name,
    contentType: upload.contentType,
    metadata: upload.metadata,
    namespace: upload.lease?.namespace ?? upload.documentNamespace,
    key: upload.lease?.key ?? null,
    leaseId: upload.lease?.leaseId ?? null,
    txnId: upload.lease?.txnId ?? null,
    fencingToken: upload.lease?.fencingToken ?? null,
    // A document's id is fixed now: a second request finishing the same upload then finds it taken instead of making a copy.
    attachmentId: upload.lease ? null : newId(),
    expiresAt: now + settings.expiryMs,
    createdAt: now,
    updatedAt: now,
  };
  if (upload.lease) {
    // The lease is checked when the upload is bound to it, and again before every part and at the end.
    await withLease(engine, upload.lease, (tx) => tx.insertUpload(row));
  } else {
    await engine.metadata.transaction((tx) => tx.insertUpload(row));
  }
  if (row.length === 0) return finish(engine, settings, row);
  return statusOf(row);
}

/** The upload's row, or `not_found` for an unknown, terminated or expired one (an expired one is forgotten now). */
async function liveRow(engine: EngineContext, uploadId: string): Promise<UploadRow> {
  const row = await engine.metadata.transaction((tx) => tx.getUpload(uploadId));
  if (row === undefined) throw new AttacheError('not_found', 'no such upload (unknown, terminated or expired)');
  if (row.expiresAt <= engine.now()) {
    await forget(engine, row);
    throw new AttacheError('not_found', 'the upload expired and its bytes were deleted');
  }
  return row;
}

/** Where an upload is bound (for the authorize hook), without side effects. */
export async function uploadScope(engine: EngineContext, uploadId: string): Promise<UploadBinding> {
  const row = await engine.metadata.transaction((tx) => tx.getUpload(uploadId));
  if (row === undefined) throw new AttacheError('not_found', 'no such upload (unknown, terminated or expired)');
  const credentials = credentialsOf(row);
  return credentials === undefined
    ? { namespace: row.namespace }
    : { namespace: row.namespace, key: credentials.key, leaseId: credentials.leaseId, txnId: credentials.txnId };
}

/**
 * An unfinished upload's lease must still be live; when its transaction
 * ended (committed, rolled back, expired), the upload is deleted with its
 * bytes and the lease's error is thrown.
 */
async function checkBinding(engine: EngineContext, row: UploadRow): Promise<void> {
  const credentials = credentialsOf(row);
  if (credentials === undefined || row.state === 'done') return;
  try {
    await withLease(engine, credentials, async () => {});
  } catch (error) {
    if (isAttacheError(error) && LEASE_OVER.has(error.code)) await forget(engine, row);
    throw error;
  }
}

export async function uploadStatus(engine: EngineContext, settings: ResumableSettings, uploadId: string): Promise<UploadStatus> {
  const row = await liveRow(engine, uploadId);
  await checkBinding(engine, row);
  // All bytes arrived but the attachment was not written (its request failed or its process died): finish now.
  if (row.state === 'receiving' && row.offset === row.length) return finish(engine, settings, row);
  return statusOf(row);
}

export async function appendToUpload(
  engine: EngineContext,
  settings: ResumableSettings,
  uploadId: string,
  options: AppendOptions,
): Promise<UploadStatus> {
  const row = await liveRow(engine, uploadId);
  if (options.offset !== row.offset) {
    throw new AttacheError('offset_mismatch', `Upload-Offset is ${options.offset}, the upload is at ${row.offset}`);
  }
  await checkBinding(engine, row);
  if (row.state === 'done') {
    if (options.body) await options.body.cancel().catch(() => {});
    return statusOf(row);
  }

  const start = row.offset;
  const room = row.length - start;
  // The part's own version id names its blob and, with encryption at rest, binds its ciphertext.
  const partVersion = newId();
  const partPath = `${PARTS_OF(uploadId)}${String(start).padStart(16, '0')}.${partVersion}`;
  const keyId = engine.keyring?.activeKeyId ?? null;
  let crc = Number.parseInt(row.crc32, 16);
  const checksum = options.checksum ? createChecksum(options.checksum.algorithm) : undefined;
  // A request from offset 0 may carry the whole upload: then its part becomes the attachment's blob as it is (see finish).
  const wholeSha256 = start === 0 ? createChecksum('sha256') : undefined;
  let size = 0;
  const source = options.body ?? new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
  const counted = keepWhatArrived(source, {
    // Bytes that fail a checksum are worthless; without one, what arrived before a drop is kept (tus resumes from it).
    keepOnInterruption: checksum === undefined,
    signal: options.signal,
    onChunk(chunk) {
      size += chunk.byteLength;
      if (size > room) {
        throw new AttacheError('attachment_too_large', `the upload is ${row.length} bytes; this request goes past its end`);
      }
      crc = crc32Continue(crc, chunk);
      checksum?.update(chunk);
      wholeSha256?.update(chunk);
    },
  });
  let stored: { size: number };
  try {
    // Encrypted like any attachment blob: the bytes are never at rest in plaintext when the store encrypts.
    // The part's row follows, durably (advanceUpload), before the offset is answered: one fsync for both.
    stored = await engine.blobs.put(partPath, engine.keyring ? counted.pipeThrough(engine.keyring.encrypt(partVersion)) : counted, {
      metadataWriteFollows: true,
    });
  } catch (error) {
    await engine.blobs.delete(partPath).catch(() => {});
    throw error;
  }
  // Whether the part is (or, when the metadata call failed midway, may be) recorded: then its blob must stay.
  let mayBeRecorded = false;
  try {
    if (checksum && !equalBytes(checksum.digest(), options.checksum!.digest)) {
      throw new AttacheError('upload_checksum_mismatch', `the body does not match its Upload-Checksum (${options.checksum!.algorithm}); it was discarded`);
    }
    if (size === 0) {
      await engine.blobs.delete(partPath);
      return statusOf(row);
    }
    const expectedStored = keyId === null ? size : encryptedSize(size, keyId);
    if (stored.size !== expectedStored) throw new AttacheError('internal', `blob store stored ${stored.size} of ${expectedStored} bytes`);
    const now = engine.now();
    const part: UploadPartRow = { uploadId, start, size, blobPath: partPath, keyId };
    const patch = { offset: start + size, crc32: toHex32(crc), expiresAt: now + settings.expiryMs, updatedAt: now };
    mayBeRecorded = true;
    const recorded = await engine.metadata.transaction((tx) => tx.advanceUpload(uploadId, start, part, patch));
    mayBeRecorded = recorded;
    if (!recorded) {
      throw new AttacheError('offset_mismatch', 'another request moved this upload meanwhile; ask for its offset (HEAD) and resume from there');
    }
    const advanced: UploadRow = { ...row, ...patch };
    if (advanced.offset === advanced.length) {
      const onlyPart: StoredBlob | undefined = wholeSha256 && {
        path: partPath,
        versionId: partVersion,
        keyId,
        size,
        crc32: patch.crc32,
        sha256: bytesToHex(wholeSha256.digest()),
      };
      return await finish(engine, settings, advanced, onlyPart);
    }
    return statusOf(advanced);
  } catch (error) {
    // A part that was not recorded is nobody's; a recorded one stays (finish failed: the next request retries).
    if (!mayBeRecorded) await engine.blobs.delete(partPath).catch(() => {});
    throw error;
  }
}

/** Deletes an upload and its bytes (tus termination). A finished upload's attachment stays. */
export async function terminateUpload(engine: EngineContext, uploadId: string): Promise<void> {
  const row = await engine.metadata.transaction((tx) => tx.getUpload(uploadId));
  if (row === undefined) throw new AttacheError('not_found', 'no such upload (unknown, terminated or expired)');
  await forget(engine, row);
}

/** Writes the attachment from the recorded parts, then marks the upload done and deletes the parts. */
/**
 * Makes the attachment of a complete upload. When this request wrote the
 * upload's only part (`onlyPart`, digests computed as it arrived), that
 * blob is adopted as the attachment's (the blob store's `copy`: a hard link
 * on fs); otherwise the parts are read back and streamed through the
 * ordinary upload path, which hashes them and checks the running CRC-32.
 */
async function finish(engine: EngineContext, settings: ResumableSettings, row: UploadRow, onlyPart?: StoredBlob): Promise<UploadStatus> {
  const parts = await engine.metadata.transaction((tx) => tx.listUploadParts(row.uploadId));
  let expected = 0;
  for (const part of parts) {
    if (part.start !== expected) throw new AttacheError('internal', `upload ${row.uploadId}: parts are not contiguous at ${expected}`);
    expected += part.size;
  }
  if (expected !== row.length) throw new AttacheError('internal', `upload ${row.uploadId}: parts hold ${expected} of ${row.length} bytes`);
  const upload = {
    name: row.name,
    contentType: row.contentType,
    body: concatenate(engine, parts),
    expectedSize: row.length,
    expectedCrc32: row.crc32,
    ...(onlyPart !== undefined && parts.length === 1 && parts[0]!.blobPath === onlyPart.path ? { storedBlob: onlyPart } : {}),
  };
  let attachment: Attachment;
  const credentials = credentialsOf(row);
  try {
    if (credentials) {
      [attachment] = (await stageAll(engine, credentials, [upload])).attachments as [Attachment];
    } else {
      [attachment] = (await createDocuments(engine, settings.documents, [{ ...upload, id: row.attachmentId! }], row.namespace)) as [Attachment];
    }
  } catch (error) {
    if (credentials && isAttacheError(error) && LEASE_OVER.has(error.code)) {
      await forget(engine, row);
      throw error;
    }
    // Another request is finishing (or finished) this very document: the upload is complete either way.
    if (!credentials && (isAttacheError(error, 'attachment_exists') || isAttacheError(error, 'waiting'))) {
      const now = await engine.metadata.transaction((tx) => tx.getUpload(row.uploadId));
      return statusOf(now ?? row, true);
    }
    throw error;
  }
  const now = engine.now();
  const done: UploadRow = { ...row, state: 'done', attachmentId: attachment.id, expiresAt: now + settings.expiryMs, updatedAt: now };
  await engine.metadata.transaction((tx) =>
    tx.updateUpload(row.uploadId, { state: 'done', attachmentId: attachment.id, expiresAt: done.expiresAt, updatedAt: now }),
  );
  await deleteParts(engine, row.uploadId).catch(() => {}); // the sweeper retries with the row's expiry
  return statusOf(done);
}

/** The parts' bytes in order, one blob open at a time. */
function concatenate(engine: EngineContext, parts: readonly UploadPartRow[]): ReadableStream<Uint8Array> {
  let index = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          if (reader === undefined) {
            const part = parts[index++];
            if (part === undefined) return controller.close();
            const stream = await openPart(engine, part);
            if (stream === undefined) throw new AttacheError('internal', `upload part ${part.blobPath} is missing`);
            reader = stream.getReader();
          }
          const { done, value } = await reader.read();
          if (!done) return controller.enqueue(value);
          reader = undefined;
        }
      },
      async cancel(reason) {
        await reader?.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** A part's plaintext: decrypted when it was stored encrypted. */
async function openPart(engine: EngineContext, part: UploadPartRow): Promise<ReadableStream<Uint8Array> | undefined> {
  if (part.keyId === null) return engine.blobs.get(part.blobPath);
  if (!engine.keyring?.has(part.keyId)) throw keyUnavailable(part.keyId);
  const versionId = part.blobPath.slice(part.blobPath.lastIndexOf('.') + 1);
  return engine.keyring.open({ versionId, keyId: part.keyId, size: part.size }, (range) => engine.blobs.get(part.blobPath, range));
}

/** Forgets an upload: the row first (nobody records into it any more), then every part blob. */
async function forget(engine: EngineContext, row: UploadRow): Promise<void> {
  await engine.metadata.transaction((tx) => tx.deleteUpload(row.uploadId));
  await deleteParts(engine, row.uploadId);
}

async function deleteParts(engine: EngineContext, uploadId: string): Promise<number> {
  let deleted = 0;
  const paths: string[] = [];
  for await (const blob of engine.blobs.list(PARTS_OF(uploadId))) paths.push(blob.path);
  for (const path of paths) {
    await engine.blobs.delete(path);
    deleted += 1;
  }
  return deleted;
}

/**
 * The sweeper's step for uploads: expired uploads and unfinished ones whose
 * transaction ended are deleted with their parts; a part blob whose upload
 * row is gone (a request that raced a termination, a crash) is deleted once
 * older than the orphan grace. Returns how many uploads and orphan parts went.
 */
export async function sweepUploads(engine: EngineContext): Promise<{ uploads: number; parts: number }> {
  let uploads = 0;
  for (let round = 0; round < 1000; round++) {
    const abandoned = await engine.metadata.transaction((tx) => tx.listAbandonedUploads(engine.now(), BATCH));
    for (const row of abandoned) {
      await forget(engine, row);
      uploads += 1;
    }
    if (abandoned.length < BATCH) break;
  }
  let parts = 0;
  const known = new Map<string, boolean>();
  for await (const blob of engine.blobs.list(UPLOADS_PREFIX)) {
    const uploadId = blob.path.slice(UPLOADS_PREFIX.length).split('.', 1)[0]!;
    if (!known.has(uploadId)) {
      known.set(uploadId, (await engine.metadata.transaction((tx) => tx.getUpload(uploadId))) !== undefined);
    }
    if (known.get(uploadId)) continue;
    if (engine.orphanGraceMs > 0 && (blob.modifiedAt ?? Infinity) > engine.now() - engine.orphanGraceMs) continue;
    await engine.blobs.delete(blob.path);
    parts += 1;
  }
  return { uploads, parts };
}

/**
 * Passes `source` through, calling `onChunk` for each chunk (which may throw
 * to fail the stream). When the source errors or `signal` aborts (the
 * client went away) and `keepOnInterruption` is set, the stream ends
 * normally instead: the bytes that arrived are kept.
 */
function keepWhatArrived(
  source: ReadableStream<Uint8Array>,
  options: { keepOnInterruption: boolean; signal: AbortSignal | undefined; onChunk(chunk: Uint8Array): void },
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let interrupted: unknown;
  const onAbort = () => {
    interrupted ??= options.signal?.reason ?? new Error('aborted');
    void reader.cancel(interrupted).catch(() => {});
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  const stop = () => options.signal?.removeEventListener('abort', onAbort);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          interrupted ??= error;
          result = { done: true, value: undefined };
        }
        if (interrupted !== undefined && !options.keepOnInterruption) {
          stop();
          throw interrupted;
        }
        if (result.done) {
          stop();
          return controller.close();
        }
        if (!(result.value instanceof Uint8Array)) throw new AttacheError('invalid_body', 'body chunks must be Uint8Array');
        try {
          options.onChunk(result.value);
        } catch (error) {
          stop();
          await reader.cancel(error).catch(() => {});
          throw error;
        }
        controller.enqueue(result.value);
      },
      async cancel(reason) {
        stop();
        await reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let index = 0; index < a.byteLength; index++) if (a[index] !== b[index]) return false;
  return true;
}
