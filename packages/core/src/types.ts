// Public shapes of the keyed, leased face of the store (API.md §0).
import type { CrashPointHook } from './crash-points.js';
import type { EncryptionOptions } from './crypto.js';
import type { ErrorCode } from './errors.js';
import type { BlobStore, MetadataStore } from './ports.js';
import type { AttachmentRef, GetAttachmentParams, IAttachmentStore } from './seed-interface.js';

export interface Attachment {
  id: string;
  name: string;
  namespace: string;
  key: string;
  size: number;
  contentType: string;
  extension: string | null;
  /** CRC-32, 8 lowercase hex digits. */
  crc32: string;
  /** SHA-256, 64 lowercase hex digits. */
  sha256: string;
  createdAt: Date;
  updatedAt: Date;
}

export type AttachmentBody = ReadableStream<Uint8Array> | Uint8Array | AsyncIterable<Uint8Array>;

export type AttachmentSelector = { name: string; id?: undefined } | { id: string; name?: undefined };

export interface AcquireOptions {
  namespace?: string;
  key: string;
  ttlSeconds: number;
  owner: string;
  /** -1 (default): fail at once with `waiting`; 0: wait until free; > 0: wait up to this many seconds. */
  blockSeconds?: number;
  /** Join an existing transaction: releasing any of its leases commits all its keys together. */
  txnId?: string;
  /** Gives up waiting (rejects with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

export interface LeaseInfo {
  leaseId: string;
  txnId: string;
  fencingToken: number;
  expiresAt: Date;
  namespace: string;
  key: string;
  owner: string;
}

export interface AttachOptions {
  name: string;
  body: AttachmentBody;
  contentType?: string;
  /** Explicit extension (no dot); derived from `name` when omitted. */
  extension?: string | null;
  /** Per-call limit, capped by the store's `maxBytes`. 0 means the store's limit. */
  maxBytes?: number;
  /** When the name exists (committed or staged), return it unchanged without reading `body`. */
  preventOverwrite?: boolean;
  /** Expected size; a different byte count rejects with `size_mismatch`. */
  expectedSize?: number;
  /** Expected CRC-32 (hex) and/or SHA-256 (hex); mismatch rejects with `checksum_mismatch`. */
  expectedCrc32?: string;
  expectedSha256?: string;
  signal?: AbortSignal;
}

export interface AttachResult {
  attachment: Attachment;
  /** True when `preventOverwrite` found the name and nothing was written. */
  noop: boolean;
}

export interface OpenedAttachment {
  attachment: Attachment;
  /** The requested range (inclusive), or the whole attachment. */
  range: { start: number; end: number } | null;
  body: ReadableStream<Uint8Array>;
}

export interface OpenOptions extends GetAttachmentParams {
  signal?: AbortSignal;
}

/** Proof of holding a lease, as carried in HTTP headers. */
export interface LeaseCredentials {
  namespace?: string;
  key: string;
  leaseId: string;
  txnId: string;
  /** Optional for the TS API (the lease object knows it); HTTP always sends it. */
  fencingToken?: number;
}

export interface AttachAllResult {
  attachments: Attachment[];
  /** True when every part was skipped by `preventOverwrite`. */
  noop: boolean;
}

/** An upload of the document face: a new attachment that is its own key, committed at once. */
export interface DocumentUpload extends Omit<AttachOptions, 'preventOverwrite'> {
  /**
   * The new document's id, chosen by the caller so that it is known before
   * the upload ends (@attache/client's `create()` sends one): a UUIDv7 in
   * lowercase hex (`invalid_ref` otherwise) that no attachment has yet
   * (`attachment_exists`, 409, otherwise). Default: a new id.
   */
  id?: string;
}

export interface Lease extends LeaseInfo {
  attach(options: AttachOptions): Promise<AttachResult>;
  /**
   * Stages several uploads as one unit (multipart): each part's body is read
   * fully before the next part is taken from the iterable; either all parts
   * are staged or none is (a failure removes the parts staged so far).
   */
  attachAll(parts: AsyncIterable<AttachOptions> | Iterable<AttachOptions>): Promise<AttachAllResult>;
  list(): Promise<Attachment[]>;
  get(selector: AttachmentSelector): Promise<Attachment>;
  open(selector: AttachmentSelector, options?: OpenOptions): Promise<OpenedAttachment>;
  delete(selector: AttachmentSelector): Promise<{ deleted: boolean }>;
  deleteAll(): Promise<{ deleted: number }>;
  /**
   * Takes back this transaction's own staged write or staged delete of one
   * attachment, so the lease sees the committed version again (nothing is
   * staged against the committed one). For undoing one upload of a request
   * that failed half-way.
   */
  unstage(selector: AttachmentSelector): Promise<{ unstaged: boolean }>;
  keepalive(options: { ttlSeconds: number }): Promise<LeaseInfo>;
  release(options?: { rollback?: boolean }): Promise<{ released: true }>;
}

export interface SweepReport {
  expiredLeases: number;
  rolledBackTxns: number;
  promoted: number;
  garbageDeleted: number;
  orphansDeleted: number;
  /** Resumable uploads deleted with their bytes (expired, or their transaction ended), plus orphan parts. */
  uploadsDeleted: number;
}

export interface RotateKeysOptions {
  /** Stops the rotation between objects and mid-object (the rotation rejects with the signal's reason); rerun to resume. */
  signal?: AbortSignal;
  /**
   * Called before the first object, after each one, and between the chunks
   * of each. May be async: the rotation waits for it (backpressure for a
   * slow progress display).
   */
  onProgress?: (progress: KeyRotationProgress) => void | Promise<void>;
  /** Rows read from the metadata store per page (default 100). */
  batchSize?: number;
  /**
   * Whether objects stored in plaintext (written before encryption was
   * enabled) are encrypted too. Default true: enabling encryption and
   * rotating leaves nothing in plaintext.
   */
  encryptPlaintext?: boolean;
}

export interface KeyRotationProgress {
  /** The key every object ends up under. */
  activeKeyId: string;
  /** Committed objects not under the active key when the rotation started (grows if more turn up meanwhile), and their plaintext bytes. */
  totalObjects: number;
  totalBytes: number;
  /** Of those, objects handled so far (re-encrypted, superseded or failed), and bytes read so far. */
  doneObjects: number;
  doneBytes: number;
}

export interface KeyRotationFailure {
  attachmentId: string;
  namespace: string;
  key: string;
  name: string;
  /** The key id the object is still under (null: plaintext). */
  keyId: string | null;
  code: ErrorCode;
  message: string;
}

export interface KeyRotationReport extends KeyRotationProgress {
  /** Objects now under the active key, and their plaintext bytes. */
  rotated: number;
  rotatedBytes: number;
  /** Objects deleted or overwritten while they were being re-encrypted: the newer state won, nothing was left to do. */
  superseded: number;
  /** Objects that could not be re-encrypted (unreadable, a key missing, bytes that no longer match their SHA-256); they stay as they were. */
  failed: KeyRotationFailure[];
  /**
   * Committed objects still not under the active key after the pass: the
   * failures, plus any written meanwhile by a process whose active key is
   * another one. 0 means no object needs the other keys any more.
   */
  remaining: number;
}

export interface AttachmentStoreOptions {
  metadata: MetadataStore;
  blobs: BlobStore;
  /** Largest attachment accepted, in bytes (default 1 TiB). 0 = unlimited. */
  maxBytes?: number;
  /** Namespace of document attachments made by `create()` (default `default`). */
  documentNamespace?: string;
  /** Lease TTL used while a `create()` upload streams (default 300 s, renewed while bytes flow). */
  documentLeaseSeconds?: number;
  /**
   * Run `sweep()` on a timer this often, in seconds. Default 0: no timer —
   * core starts none by itself; a long-running server asks for one (`attache
   * serve` uses 30 s), a Worker calls `sweep()` from a scheduled event.
   */
  sweepIntervalSeconds?: number;
  /**
   * A resumable (tus) upload untouched this long is deleted with its bytes
   * (default 86400 s = 24 h); a finished one is remembered this long for
   * clients asking where it stands.
   */
  uploadExpirySeconds?: number;
  /** A staged blob younger than this is never treated as an orphan (default 60 s). */
  orphanGraceSeconds?: number;
  /**
   * Blobs of at most this many stored bytes are kept in the metadata store
   * instead of `blobs` (default 0: none). Small attachments then cost one
   * database write and no file or object-store round trip. Needs a metadata
   * store that can hold blob data (`holdsBlobData`: SQLite, PostgreSQL,
   * memory). At most 1 MiB; the bytes of an upload up to this size are held
   * in memory until it is stored.
   */
  inlineBlobMaxBytes?: number;
  /**
   * Encryption at rest: every new upload is encrypted with `activeKeyId`
   * (AES-256-GCM in 64 KiB segments, a data key per object); reads decrypt
   * with the key id stored in the row. Objects written in plaintext before
   * stay readable. Size, hashes and ETag are always the plaintext's.
   */
  encryption?: EncryptionOptions;
  /** Clock, for tests. */
  now?: () => number;
  /**
   * Called at each named step of the commit protocol (`CRASH_POINTS`), for
   * crash-safety tests: the host may kill its process there. Core itself has
   * no process-level side effects.
   */
  onCrashPoint?: CrashPointHook;
}

export interface CreateDocumentsOptions {
  /** Namespace the documents are created in (default: the store's `documentNamespace`). */
  namespace?: string;
}

export interface AttachmentStore extends IAttachmentStore {
  acquire(options: AcquireOptions): Promise<Lease>;
  /**
   * The document face over the engine: each upload becomes a new committed
   * attachment that is its own key. All parts commit together or none does.
   */
  createDocuments(
    parts: AsyncIterable<DocumentUpload> | Iterable<DocumentUpload>,
    options?: CreateDocumentsOptions,
  ): Promise<Attachment[]>;
  /**
   * Deletes a document attachment (made by `create()`/`createDocuments`).
   * Documents cannot be leased (`acquire` of their key is refused with
   * `document_key`), so this is the only way to remove one. `deleted: false`
   * when the id is unknown or is not a document.
   */
  deleteDocument(attachmentId: string): Promise<{ deleted: boolean }>;
  /** Rebuilds a lease handle from credentials (HTTP); checks them on every call. */
  lease(credentials: LeaseCredentials): Lease;
  /** Committed attachments of a key, sorted by name. */
  listAttachments(scope: { namespace?: string; key: string }): Promise<Attachment[]>;
  getAttachment(selector: { namespace?: string; key: string; name: string } | { id: string }): Promise<Attachment>;
  openAttachment(
    selector: { namespace?: string; key: string; name: string } | { namespace?: string; key?: string; id: string },
    options?: OpenOptions,
  ): Promise<OpenedAttachment>;
  /** Resumable uploads (the engine of the tus routes): bytes over many requests, an attachment at the last byte. */
  readonly uploads: ResumableUploads;
  /** Removes expired leases, unfinished promotions, garbage and orphan blobs. */
  sweep(): Promise<SweepReport>;
  /**
   * Resolves once the background work queued so far is done: promoting the
   * blobs of committed releases to their committed paths and deleting blobs
   * no row points at. Releases and uploads answer before that work (readers
   * follow the row, so they never notice); tests and tools that inspect the
   * blob store's layout wait here first.
   */
  settled(): Promise<void>;
  /**
   * Re-encrypts every committed object (attachments and documents) that is
   * not under the active encryption key — and, unless
   * `encryptPlaintext: false`, every object stored in plaintext — to the
   * active key, one object at a time, while readers and writers go on.
   * Each object gets a new blob; its row switches to it only if nothing
   * changed the object meanwhile, and the old blob is queued as garbage
   * (deleted by a later sweep, so readers already streaming it finish).
   * Safe to interrupt and rerun: it picks up the objects still under other
   * keys. Needs `encryption` (else `invalid_argument`).
   */
  rotateKeys(options?: RotateKeysOptions): Promise<KeyRotationReport>;
  /** Waits for background work, then closes the ports. */
  close(): Promise<void>;
  /** The configured maximum attachment size (0 = unlimited). */
  readonly maxBytes: number;
}

export type { AttachmentRef };

/** A resumable upload's arguments (`store.uploads.create`). */
export interface CreateUploadOptions {
  /** Total size in bytes (≤ the store's `maxBytes`, else `attachment_too_large`). */
  length: number;
  /** The attachment's name. */
  name: string;
  contentType?: string;
  /** Opaque text returned by `status` (tus `Upload-Metadata`). */
  metadata?: string;
  /** Stage into this lease's transaction (lease face); without it the upload becomes a committed document. */
  lease?: LeaseCredentials;
  /** Document face: the namespace (default: the store's document namespace). */
  namespace?: string;
}

export interface AppendUploadOptions {
  /** Where these bytes start; must be the upload's offset (`offset_mismatch` otherwise). */
  offset: number;
  body: ReadableStream<Uint8Array> | null;
  /** The digest the body must have (`upload_checksum_mismatch` otherwise, and the body is discarded). */
  checksum?: { algorithm: 'sha1' | 'sha256' | 'crc32'; digest: Uint8Array };
  /** The client went away: the bytes received so far are kept (unless a checksum was given). */
  signal?: AbortSignal;
}

export interface UploadState {
  uploadId: string;
  length: number;
  /** Bytes durably received. */
  offset: number;
  metadata: string;
  expiresAt: Date;
  namespace: string;
  /** The lease's key; null for a document upload. */
  key: string | null;
  /** All bytes arrived and the attachment is written (or being written by a concurrent request). */
  complete: boolean;
  /** The attachment's id once written. */
  attachmentId: string | null;
}

/** A document upload has only a namespace; a lease-bound one also its key, lease and transaction. */
export interface UploadBinding {
  namespace: string;
  key?: string;
  leaseId?: string;
  txnId?: string;
}

export interface ResumableUploads {
  create(options: CreateUploadOptions): Promise<UploadState>;
  /** Where the upload stands; finishes it when all bytes arrived but the attachment is not written yet. */
  status(uploadId: string): Promise<UploadState>;
  append(uploadId: string, options: AppendUploadOptions): Promise<UploadState>;
  /** Deletes the upload and its bytes (a finished upload's attachment stays). */
  terminate(uploadId: string): Promise<void>;
  /** Where an upload is bound, for authorization, without side effects. */
  scope(uploadId: string): Promise<UploadBinding>;
}
