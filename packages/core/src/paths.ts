// Blob layout (DESIGN.md "Storage layout"). Every version of an attachment
// has its own blob, named by the row's `versionId`, so promotion never
// overwrites a blob that a reader may be streaming.

import { AttacheError } from './errors.js';

export const STATE_PREFIX = 'state/';

/**
 * The rule every blob store applies before touching storage: a relative,
 * `/`-separated path with no empty, `.` or `..` segment, no `\\` and no NUL.
 * Engine bugs that build odd paths then fail loudly on every backend.
 */
export function checkBlobPath(path: string): string {
  const invalid = (why: string): never => {
    throw new AttacheError('invalid_key', `invalid blob path ${JSON.stringify(path)}: ${why}`);
  };
  if (typeof path !== 'string' || path === '') invalid('empty');
  if (path.includes('\\')) invalid('contains a backslash');
  if (path.includes('\0')) invalid('contains NUL');
  for (const segment of path.split('/')) {
    if (segment === '') invalid('empty segment (absolute path, "//" or trailing "/")');
    if (segment === '.' || segment === '..') invalid(`"${segment}" segment`);
  }
  return path;
}

export function committedBlobPath(namespace: string, key: string, versionId: string): string {
  return `${STATE_PREFIX}${namespace}/${key}/attachments/${versionId}`;
}

/**
 * Where key rotation writes the re-encrypted copy of a committed version: a
 * new path beside the old blob (never over it: a reader may be streaming
 * it), unique per rotation, whose last segment is no version id. So until
 * the row points at it, the orphan scan treats it as an orphan.
 */
export function rotatedBlobPath(namespace: string, key: string, versionId: string, rotationId: string): string {
  return `${committedBlobPath(namespace, key, versionId)}.${rotationId}`;
}

/**
 * Staged blobs share one flat directory, named by transaction and version:
 * an upload then creates no directory (the directory exists after the first
 * upload), so its blob is durable after one file fsync and one directory
 * fsync. `~` cannot occur in a namespace (names.ts), so the directory never
 * collides with a namespace's.
 */
export const STAGING_PREFIX = `${STATE_PREFIX}~staging/`;

export function stagedBlobPath(txnId: string, versionId: string): string {
  return `${STAGING_PREFIX}${txnId}.${versionId}`;
}

const STAGED = /^state\/~staging\/([^/.]+)\.[^/]+$/;
/** Where earlier versions staged blobs (`<key>/.staging/<txn>/attachments/<version>`); still recognized, so their leftovers are promoted or swept. */
const LEGACY_STAGED = /\/\.staging\/([^/]+)\/attachments\/[^/]+$/;

/** The transaction a staged blob belongs to, or undefined for a committed path. */
export function stagedTxnOf(path: string): string | undefined {
  return (STAGED.exec(path) ?? LEGACY_STAGED.exec(path))?.[1];
}

export function isStagedPath(path: string): boolean {
  return stagedTxnOf(path) !== undefined;
}
