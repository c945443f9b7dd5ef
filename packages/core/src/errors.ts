// One error type for the whole library. The code → HTTP status table lives
// here and only here (API.md §3); the HTTP layer maps with `error.status`.

export const ERROR_STATUS = {
  missing_key: 400,
  invalid_key: 400,
  invalid_namespace: 400,
  missing_name: 400,
  invalid_name: 400,
  missing_lease: 400,
  missing_txn: 400,
  missing_fencing_token: 400,
  invalid_fencing_token: 400,
  invalid_max_bytes: 400,
  checksum_mismatch: 400,
  size_mismatch: 400,
  invalid_body: 400,
  invalid_ref: 400,
  invalid_query: 400,
  invalid_content_type: 400,
  /** A TypeScript API argument out of range (`ttlSeconds`, `owner`, …). HTTP reports its own fields as `invalid_body`. */
  invalid_argument: 400,
  unauthorized: 401,
  lease_required: 403,
  lease_expired: 403,
  fencing_mismatch: 403,
  attachment_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  waiting: 409,
  txn_mismatch: 409,
  /** A commit-release of a transaction that was rolled back: nothing was committed. */
  txn_rolled_back: 409,
  /** A rollback-release of a transaction that already committed: nothing was rolled back. */
  txn_committed: 409,
  /** An acquire of a key that holds a document attachment (the document face): documents are never leased. */
  document_key: 409,
  /** A document upload that chose an id (`id=`) an attachment already has. */
  attachment_exists: 409,
  /** Resumable uploads (tus): a PATCH whose `Upload-Offset` is not where the upload stands, or that lost a race to another PATCH. */
  offset_mismatch: 409,
  attachment_too_large: 413,
  /** Resumable uploads (tus): a PATCH whose body is not `application/offset+octet-stream`. */
  unsupported_media_type: 415,
  /** Resumable uploads (tus): a request without `Tus-Resumable: 1.0.0`. */
  unsupported_tus_version: 412,
  range_not_satisfiable: 416,
  /** Resumable uploads (tus): another request of this server has been appending to the upload for a while; retry. */
  upload_locked: 423,
  /** Resumable uploads (tus checksum extension): the body does not match its `Upload-Checksum`; it was discarded. */
  upload_checksum_mismatch: 460,
  internal: 500,
  /** Stored bytes failed authentication on read: altered, truncated, reordered, moved under another version, or the wrong key. */
  decryption_failed: 500,
  /** The attachment was encrypted with a key id this store does not hold (or encryption is not configured). */
  key_unavailable: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface AttacheErrorOptions {
  /** Seconds after which retrying may succeed (`waiting`, `unavailable`). */
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class AttacheError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: AttacheErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AttacheError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isAttacheError(error: unknown, code?: ErrorCode): error is AttacheError {
  return error instanceof AttacheError && (code === undefined || error.code === code);
}
