// createAttachmentStore: checks the options, builds the engine context and
// wires the faces of the store together. The faces live in their own
// modules: the seed interface (seed-face.ts) over the document face
// (documents.ts), the keyed face's lease handle (lease-handle.ts), reads
// without a lease (committed-reads.ts); every public call waits for the
// schema (migration-gate.ts), and the sweeper runs on demand or on the
// host's timer (sweep-runner.ts).
import { backgroundWork } from './background.js';
import { committedReads } from './committed-reads.js';
import { Keyring } from './crypto.js';
import { createDocuments, deleteDocument, type DocumentSettings } from './documents.js';
import { inlineSmallBlobs, isInlineBlobStore } from './inline-blobs.js';
import type { EngineContext } from './engine-context.js';
import { KeyWaiters } from './key-waiters.js';
import { rotateKeys } from './key-rotation.js';
import { acquireLease } from './lease.js';
import { leaseFromCredentials, leaseFromRow } from './lease-handle.js';
import { checkAcquireOptions, checkCredentials, ttlProblem } from './lease-rules.js';
import { migrationGate } from './migration-gate.js';
import { checkNamespace, DEFAULT_NAMESPACE } from './names.js';
import { seedFace } from './seed-face.js';
import { createSweepRunner } from './sweep-runner.js';
import { resumableUploads } from './resumable-face.js';
import type { BlobStore } from './ports.js';
import type { AttachmentStore, AttachmentStoreOptions } from './types.js';

const TIB = 1024 ** 4;

export function createAttachmentStore(options: AttachmentStoreOptions): AttachmentStore {
  const maxBytes = options.maxBytes ?? TIB;
  if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new TypeError('maxBytes must be a non-negative integer');
  const documentLeaseSeconds = options.documentLeaseSeconds ?? 300;
  const leaseProblem = ttlProblem(documentLeaseSeconds);
  if (leaseProblem !== undefined) throw new TypeError(`documentLeaseSeconds ${leaseProblem}`);
  const sweepIntervalSeconds = options.sweepIntervalSeconds ?? 0;
  if (!(sweepIntervalSeconds >= 0)) throw new TypeError('sweepIntervalSeconds must be a number ≥ 0');
  const documents: DocumentSettings = {
    namespace: checkNamespace(options.documentNamespace ?? DEFAULT_NAMESPACE),
    leaseMs: documentLeaseSeconds * 1000,
  };
  const uploadExpirySeconds = options.uploadExpirySeconds ?? 86_400;
  if (!(uploadExpirySeconds > 0)) throw new TypeError('uploadExpirySeconds must be a number > 0');
  const onCrashPoint = options.onCrashPoint;
  const now = options.now ?? Date.now;
  const engine: EngineContext = {
    metadata: options.metadata,
    blobs: withInlineBlobs(options, now),
    now,
    maxBytes,
    orphanGraceMs: (options.orphanGraceSeconds ?? 60) * 1000,
    deleteGraceMs: Math.max(0, options.blobs.deleteGraceSeconds ?? 0) * 1000,
    waiters: new KeyWaiters(),
    keyring: options.encryption === undefined ? undefined : new Keyring(options.encryption),
    background: backgroundWork(),
    crashPoint: onCrashPoint === undefined ? () => {} : (point) => onCrashPoint(point),
  };
  const gate = migrationGate(engine.metadata);
  const sweeper = createSweepRunner(engine, gate, sweepIntervalSeconds);
  const reads = committedReads(engine);
  // Releases committed by other processes wake this process's blocked acquires.
  const stopListening = engine.metadata.onRelease?.((namespace, key) => engine.waiters.notify(namespace, key));
  let closed = false;

  return {
    maxBytes,
    ...seedFace(engine, gate, documents),

    async acquire(acquireOptions) {
      const checked = checkAcquireOptions(acquireOptions);
      return leaseFromRow(engine, gate, await gate(() => acquireLease(engine, checked)));
    },
    lease: (credentials) => leaseFromCredentials(engine, gate, checkCredentials(credentials)),

    async createDocuments(parts, createOptions = {}) {
      const namespace = createOptions.namespace === undefined ? documents.namespace : checkNamespace(createOptions.namespace);
      return gate(() => createDocuments(engine, documents, parts, namespace));
    },
    deleteDocument: (attachmentId) => gate(() => deleteDocument(engine, documents, attachmentId)),

    uploads: resumableUploads(engine, gate, { documents, expiryMs: uploadExpirySeconds * 1000 }),

    listAttachments: (scope) => gate(() => reads.listAttachments(scope)),
    getAttachment: (selector) => gate(() => reads.getAttachment(selector)),
    openAttachment: (selector, openOptions) => gate(() => reads.openAttachment(selector, openOptions)),

    sweep: () => sweeper.sweepOnce(),
    rotateKeys: (rotateOptions) => gate(() => rotateKeys(engine, rotateOptions)),
    settled: () => engine.background.settled(),

    async close() {
      if (closed) return;
      closed = true;
      stopListening?.();
      await sweeper.stop();
      // Promotions in flight finish before the ports close (a stopped one is the sweeper's to finish, but need not be).
      await engine.background.settled();
      await engine.blobs.close?.();
      await engine.metadata.close();
    },
  };
}

/** Most bytes a blob kept inline may have: a row, not a file, and held in memory while it arrives. */
export const MAX_INLINE_BLOB_BYTES = 1024 * 1024;

function withInlineBlobs(options: AttachmentStoreOptions, now: () => number): BlobStore {
  const maxBytes = options.inlineBlobMaxBytes ?? 0;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0 || maxBytes > MAX_INLINE_BLOB_BYTES) {
    throw new TypeError(`inlineBlobMaxBytes must be an integer from 0 to ${MAX_INLINE_BLOB_BYTES}`);
  }
  // Already wrapped by the host (its threshold wins).
  if (isInlineBlobStore(options.blobs)) return options.blobs;
  if (!options.metadata.holdsBlobData) {
    if (maxBytes === 0) return options.blobs;
    throw new TypeError('inlineBlobMaxBytes needs a metadata store that holds blob data (SQLite, PostgreSQL or memory)');
  }
  // Wrapped even at 0: blobs an earlier setting kept inline stay readable.
  return inlineSmallBlobs(options.blobs, options.metadata, { maxBytes, now });
}
