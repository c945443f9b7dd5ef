// Blob layout (DESIGN.md "Storage layout"). Every version of an attachment
// has its own blob, named by the row's `versionId`, so promotion never
// overwrites a blob that a reader may be streaming.

export const STATE_PREFIX = 'state/';

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
