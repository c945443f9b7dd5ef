// Ports: the two small interfaces that storage packages implement.
// `MetadataStore` holds every piece of lease, transaction and attachment
// state (never only process memory), so several server processes sharing one
// database coordinate correctly. `BlobStore` holds bytes.
//
// The engine owns all behaviour; a port only stores rows and bytes. Every
// method of `MetadataTx` runs inside the database transaction that
// `MetadataStore.transaction()` opened, so a sequence of calls is atomic.

/** Times are integer milliseconds since the Unix epoch. */
export type EpochMillis = number;

export interface KeyRow {
  namespace: string;
  key: string;
  /** Incremented on every acquire of this key; never decreases. */
  fencingToken: number;
  /** The lease currently holding the key (it may have expired), or null. */
  leaseId: string | null;
}

export type LeaseState = 'active' | 'released' | 'expired';

export interface LeaseRow {
  leaseId: string;
  namespace: string;
  key: string;
  txnId: string;
  owner: string;
  fencingToken: number;
  expiresAt: EpochMillis;
  state: LeaseState;
  createdAt: EpochMillis;
}

export type TxnState = 'active' | 'committed' | 'rolled_back';

export interface TxnRow {
  txnId: string;
  state: TxnState;
  createdAt: EpochMillis;
  updatedAt: EpochMillis;
}

/**
 * `committed`: visible to everyone. `staged`: a write of transaction `txnId`.
 * `tombstone`: a staged delete of the committed attachment `attachmentId`.
 */
export type AttachmentRowState = 'committed' | 'staged' | 'tombstone';

export interface AttachmentRow {
  /** Primary key, a UUIDv7; also names the blob of this version. */
  versionId: string;
  /** Stable id users see; an overwrite by name keeps it. */
  attachmentId: string;
  namespace: string;
  key: string;
  name: string;
  state: AttachmentRowState;
  /** The staging transaction; null once committed. */
  txnId: string | null;
  size: number;
  contentType: string;
  extension: string | null;
  crc32: string;
  sha256: string;
  /** Where the bytes are now (staged path until promotion). Empty for tombstones. */
  blobPath: string;
  /** Encryption key id, or null when stored in plaintext. */
  keyId: string | null;
  createdAt: EpochMillis;
  updatedAt: EpochMillis;
}

/**
 * A resumable upload (the tus protocol, `resumable.ts`): its bytes arrive
 * in parts, each a blob of its own; the row is what every server instance
 * reads to answer where the upload stands.
 */
export interface UploadRow {
  uploadId: string;
  /** `receiving` until the last byte arrived and the attachment was written; then `done`. */
  state: 'receiving' | 'done';
  /** Total size, fixed at creation. */
  length: number;
  /** Bytes received and durable so far (the sum of the recorded parts). */
  offset: number;
  /** CRC-32 of bytes 0..offset, 8 lowercase hex digits; checked against the assembled bytes at the end. */
  crc32: string;
  /** The attachment's name and stored type. */
  name: string;
  contentType: string;
  /** The client's `Upload-Metadata`, echoed on HEAD. */
  metadata: string;
  /** The document namespace, or the lease's namespace. */
  namespace: string;
  /** Lease face: the key, lease, transaction and fencing token it stages into. All null for a document upload. */
  key: string | null;
  leaseId: string | null;
  txnId: string | null;
  fencingToken: number | null;
  /** Document face: the id chosen at creation. Lease face: the id once the attachment is staged. */
  attachmentId: string | null;
  expiresAt: EpochMillis;
  createdAt: EpochMillis;
  updatedAt: EpochMillis;
}

/** One recorded part of an upload: bytes start..start+size-1 in the blob at `blobPath`. */
export interface UploadPartRow {
  uploadId: string;
  start: number;
  /** Plaintext bytes. */
  size: number;
  blobPath: string;
  /** Encryption key id when the part is stored encrypted (its version id is the blob name's last segment), else null. */
  keyId: string | null;
}

export interface AttachmentScope {
  namespace: string;
  key: string;
}

/** Which committed rows key rotation still has to re-encrypt. */
export interface NotOnKeyQuery {
  /** The active key id: rows under it are done. */
  keyId: string;
  /** Whether plaintext rows (`keyId` null) count too. */
  includePlaintext: boolean;
}

export interface MetadataTx {
  // Keys and leases
  /**
   * Reads a key row, locking the key (even before its row exists) against
   * concurrent transactions until this one ends. The engine takes a key's
   * lock before it reads or writes any lease or attachment row of that key.
   */
  lockKey(namespace: string, key: string): Promise<KeyRow | undefined>;
  putKey(row: KeyRow): Promise<void>;
  getLease(leaseId: string): Promise<LeaseRow | undefined>;
  insertLease(row: LeaseRow): Promise<void>;
  updateLease(leaseId: string, patch: Partial<Pick<LeaseRow, 'expiresAt' | 'state'>>): Promise<void>;
  /** Active leases of a transaction (all keys it spans). */
  listActiveLeasesOfTxn(txnId: string): Promise<LeaseRow[]>;
  /** Active leases whose `expiresAt` is at or before `now`, oldest first. */
  listExpiredLeases(now: EpochMillis, limit: number): Promise<LeaseRow[]>;
  /** Forgets released/expired leases whose `expiresAt` is before `before` (history used for error codes). */
  pruneLeases(before: EpochMillis): Promise<number>;

  // Transactions
  /**
   * Locks a transaction id (also before its row exists) against concurrent
   * database transactions until this one ends. The engine takes it before
   * any key lock in every call that may touch several keys of one attache
   * transaction (release, rollback, expiry, joining acquire, lease checks),
   * so those calls serialize per transaction and never wait for each
   * other's key locks in opposite orders. A no-op where transactions
   * already run one at a time (SQLite, memory).
   */
  lockTxn(txnId: string): Promise<void>;
  getTxn(txnId: string): Promise<TxnRow | undefined>;
  insertTxn(row: TxnRow): Promise<void>;
  updateTxn(txnId: string, patch: Pick<TxnRow, 'state' | 'updatedAt'>): Promise<void>;
  /**
   * Forgets ended (committed or rolled back) transactions whose `updatedAt`
   * is before `before` and that no lease row refers to any more (a replayed
   * release reads its transaction's outcome there).
   */
  pruneTxns(before: EpochMillis): Promise<number>;

  // Attachments
  /** Committed rows of one key, plus the staged/tombstone rows of `txnId` when given; sorted by name. */
  listAttachments(scope: AttachmentScope, txnId?: string): Promise<AttachmentRow[]>;
  /** The committed row with this attachment id. */
  getCommittedById(attachmentId: string): Promise<AttachmentRow | undefined>;
  /** The committed row of a name, or the staged/tombstone row of `txnId`. */
  findByName(scope: AttachmentScope, name: string, txnId: string | null): Promise<AttachmentRow | undefined>;
  /** The committed row of an attachment id in one key, or the staged/tombstone row of `txnId`. */
  findById(scope: AttachmentScope, attachmentId: string, txnId: string | null): Promise<AttachmentRow | undefined>;
  /** Staged and tombstone rows of a transaction, all keys. */
  listStagedOfTxn(txnId: string): Promise<AttachmentRow[]>;
  insertAttachment(row: AttachmentRow): Promise<void>;
  updateAttachment(
    versionId: string,
    patch: Partial<Pick<AttachmentRow, 'state' | 'txnId' | 'blobPath' | 'updatedAt' | 'createdAt'>>,
  ): Promise<void>;
  deleteAttachment(versionId: string): Promise<void>;
  /** Committed rows whose blob still sits at a staged path (promotion unfinished). */
  listUnpromoted(limit: number): Promise<AttachmentRow[]>;
  // Key rotation (key-rotation.ts): re-encrypting committed objects to the active key.
  /**
   * Committed rows not encrypted with `keyId` — rows under another key id,
   * and plaintext rows (`keyId` null) when `includePlaintext` — with a
   * version id greater than `afterVersionId` (code-point order), in version
   * id order, at most `limit`.
   */
  listNotOnKey(query: NotOnKeyQuery & { afterVersionId: string | null; limit: number }): Promise<AttachmentRow[]>;
  /** How many committed rows `listNotOnKey` would page through, and the sum of their (plaintext) sizes. */
  countNotOnKey(query: NotOnKeyQuery): Promise<{ rows: number; bytes: number }>;
  /**
   * Points a committed row at a re-encrypted copy of its bytes: sets
   * `blobPath` and `keyId` only while the row exists, is committed and still
   * points at `fromBlobPath` (a concurrent delete or overwrite wins).
   * Nothing else changes, `updatedAt` included. Returns whether it did.
   */
  repointEncrypted(versionId: string, change: { fromBlobPath: string; toBlobPath: string; keyId: string }): Promise<boolean>;
  /** Which of these blob paths a row (any state) points at. */
  referencedBlobPaths(paths: readonly string[]): Promise<Set<string>>;
  /** Which of these version ids have a row (any state). */
  existingVersionIds(versionIds: readonly string[]): Promise<Set<string>>;
  /**
   * Optional: once this transaction commits, tell every process subscribed
   * with `MetadataStore.onRelease` that the key is free (PostgreSQL NOTIFY).
   */
  announceRelease?(namespace: string, key: string): Promise<void>;

  // Resumable uploads
  getUpload(uploadId: string): Promise<UploadRow | undefined>;
  insertUpload(row: UploadRow): Promise<void>;
  /**
   * Records `part` and moves the upload to `patch.offset`, only if the
   * upload is still `receiving` at offset `from` (a compare-and-set: of two
   * writers that started at the same offset, exactly one succeeds).
   * Returns whether it did.
   */
  advanceUpload(
    uploadId: string,
    from: number,
    part: UploadPartRow,
    patch: Pick<UploadRow, 'offset' | 'crc32' | 'expiresAt' | 'updatedAt'>,
  ): Promise<boolean>;
  updateUpload(uploadId: string, patch: Partial<Pick<UploadRow, 'state' | 'attachmentId' | 'expiresAt' | 'updatedAt'>>): Promise<void>;
  /** The recorded parts of an upload, by `start`. */
  listUploadParts(uploadId: string): Promise<UploadPartRow[]>;
  /** Forgets an upload and its part rows (the caller deletes the blobs). */
  deleteUpload(uploadId: string): Promise<void>;
  /**
   * Uploads to forget, oldest first: expired ones (`expiresAt` at or before
   * `now`), and unfinished ones bound to a transaction that is no longer
   * active (committed, rolled back, or forgotten).
   */
  listAbandonedUploads(now: EpochMillis, limit: number): Promise<UploadRow[]>;

  // Blob garbage: paths no row points at any more, deleted after the transaction.
  enqueueGarbage(paths: readonly string[], now: EpochMillis): Promise<void>;
  /** Oldest first, at most `limit`; only paths enqueued at or before `enqueuedBefore` when given. */
  listGarbage(limit: number, enqueuedBefore?: EpochMillis): Promise<string[]>;
  /** Which of these paths are queued as garbage. */
  queuedGarbage(paths: readonly string[]): Promise<Set<string>>;
  dequeueGarbage(paths: readonly string[]): Promise<void>;

  // Blob bytes held in the metadata store itself: small blobs kept inline
  // (inline-blobs.ts). Optional, all or none; `MetadataStore.holdsBlobData`
  // says whether a store's transactions offer them.
  /** Stores `row.data` at `row.path`, replacing what was there. */
  putBlobData?(row: BlobDataRow): Promise<void>;
  getBlobData?(path: string): Promise<BlobDataRow | undefined>;
  statBlobData?(path: string): Promise<BlobInfo | undefined>;
  /** A missing path is not an error: the answer says whether there was a blob. */
  deleteBlobData?(path: string): Promise<boolean>;
  /**
   * Gives the blob at `from` the path `to`, replacing what was there, in
   * this transaction (the commit moves a staged blob kept here with its
   * row); false, and nothing changed, when `from` holds none.
   */
  moveBlobData?(from: string, to: string): Promise<boolean>;
  /** Up to `limit` blobs under `prefix`, in path order, after `afterPath` when given. */
  listBlobData?(prefix: string, afterPath: string | undefined, limit: number): Promise<BlobInfo[]>;
}

/** A blob's bytes as the metadata store holds them. */
export interface BlobDataRow {
  path: string;
  data: Uint8Array;
  createdAt: EpochMillis;
}

export interface MetadataTransactionOptions {
  /**
   * false: the promise may resolve once the transaction has committed,
   * before its commit is durable. Only for writes that a later durable
   * transaction of this process vouches for before anyone relies on them:
   * where commits become durable in order (SQLite's WAL: one fsync covers
   * every commit before it), that later transaction's durability is theirs
   * too, and a crash before it loses both. Default true. Stores whose every
   * commit is durable (PostgreSQL) ignore it.
   */
  durable?: boolean;
}

export interface MetadataStore {
  /**
   * Runs `fn` in one database transaction: all its writes land, or none do.
   * Implementations serialize conflicting transactions (row locks, or one
   * writer at a time) so `lockKey` gives exclusive access to a key. Resolves
   * once the commit is durable (unless `options.durable` is false).
   */
  transaction<T>(fn: (tx: MetadataTx) => Promise<T>, options?: MetadataTransactionOptions): Promise<T>;
  /** Prepares the schema (idempotent). Called by the engine before first use. */
  migrate(): Promise<void>;
  /**
   * Optional: calls `listener` when any process's committed transaction
   * announced a key release, so blocked acquires elsewhere wake at once
   * instead of at their next poll. Returns the unsubscribe function.
   */
  onRelease?(listener: (namespace: string, key: string) => void): () => void;
  /** True when its transactions offer the blob-data methods (`putBlobData` …), so small blobs can live inline. */
  readonly holdsBlobData?: boolean;
  close(): Promise<void>;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface BlobInfo {
  path: string;
  size: number;
  /** Last modification, when the store knows it. */
  modifiedAt?: EpochMillis;
}

export interface PutOptions {
  signal?: AbortSignal;
  /**
   * The caller durably writes a metadata row naming this blob before anyone
   * relies on the blob. A store that keeps the blob in the metadata
   * database (core's inline small blobs) may then resolve once its write
   * commits and let that row's durable commit make both durable: one fsync
   * for a small upload instead of two. Other stores ignore it.
   */
  metadataWriteFollows?: boolean;
}

export interface BlobStore {
  /**
   * Stores the stream at `path`, replacing any blob there. Resolves only once
   * the bytes are durable (see `PutOptions.metadataWriteFollows`). If the
   * stream errors (or `signal` aborts), nothing is left at `path` and the
   * promise rejects with the stream's error.
   */
  put(path: string, body: ReadableStream<Uint8Array>, options?: PutOptions): Promise<{ size: number }>;
  /** Streams a blob, or a byte range of it; undefined when it does not exist. Cancelling the stream frees its resources. */
  get(path: string, range?: ByteRange): Promise<ReadableStream<Uint8Array> | undefined>;
  /** Size of a blob, or undefined when it does not exist. */
  stat(path: string): Promise<BlobInfo | undefined>;
  /** Makes `to` hold the bytes of `from` durably; `from` stays. Idempotent. */
  copy(from: string, to: string): Promise<void>;
  /** Deletes a blob; a missing blob is not an error. */
  delete(path: string): Promise<void>;
  /** Every blob whose path starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<BlobInfo>;
  /**
   * Optional: removes the store's own leftovers of writes that never
   * finished (a process killed mid-upload), last touched before `olderThan`.
   * The sweeper calls it. Returns how many were removed.
   */
  purgeTemporary?(olderThan: EpochMillis): Promise<number>;
  /**
   * Optional: how long a blob must outlive the last row that pointed at it
   * before it is deleted (promoted staged copies, replaced and deleted
   * attachments), so reads already streaming it finish. 0 or absent: a
   * read in flight survives deletion (an open file on POSIX, a blob in
   * memory) and blobs are deleted at once. Object stores that may cut a
   * read of a deleted object (R2) set it; the sweeper deletes such garbage
   * once it is this old.
   */
  readonly deleteGraceSeconds?: number;
  close?(): Promise<void>;
}
