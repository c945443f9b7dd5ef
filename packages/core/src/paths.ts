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

export function stagedBlobPath(namespace: string, key: string, txnId: string, versionId: string): string {
  return `${STATE_PREFIX}${namespace}/${key}/.staging/${txnId}/attachments/${versionId}`;
}

const STAGED = /\/\.staging\/([^/]+)\/attachments\/[^/]+$/;

/** The transaction a staged blob belongs to, or undefined for a committed path. */
export function stagedTxnOf(path: string): string | undefined {
  return STAGED.exec(path)?.[1];
}

export function isStagedPath(path: string): boolean {
  return STAGED.test(path);
}
