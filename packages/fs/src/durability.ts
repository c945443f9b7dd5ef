// Helpers that make directory entries durable: a rename or link is only
// crash-safe once the directory holding the new entry has been fsynced.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

export async function syncDirectory(directory: string): Promise<void> {
  let handle;
  try {
    handle = await open(directory, 'r');
  } catch (error) {
    // Pruned by a concurrent delete: it holds nothing left to make durable.
    if (errorCode(error) === 'ENOENT') return;
    // Windows cannot open a directory; there the rename is as durable as it gets.
    if (errorCode(error) === 'EISDIR' || errorCode(error) === 'EPERM') return;
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems (and Windows) do not support fsync on directories.
    if (errorCode(error) !== 'EINVAL' && errorCode(error) !== 'EPERM' && errorCode(error) !== 'ENOTSUP') throw error;
  } finally {
    await handle.close();
  }
}

/**
 * `mkdir -p` that also fsyncs the parent of every directory it created, so
 * the new directories survive a crash together with the file moved into them.
 */
export async function makeDirectoryDurably(directory: string): Promise<void> {
  const firstCreated = await mkdir(directory, { recursive: true });
  if (firstCreated === undefined) return;
  const toSync: string[] = [];
  for (let current = directory; current !== dirname(firstCreated); current = dirname(current)) {
    toSync.push(dirname(current));
  }
  for (const created of toSync) await syncDirectory(created);
}

/**
 * Moves a finished temp file to `target` atomically and durably. A concurrent
 * `delete` may prune the parent directories while we create them or before we
 * rename into them (ENOENT), so that step is retried.
 */
export async function renameIntoPlace(tempFile: string, target: string): Promise<void> {
  const parent = dirname(target);
  for (let attempt = 1; ; attempt++) {
    try {
      await makeDirectoryDurably(parent);
      await rename(tempFile, target);
      break;
    } catch (error) {
      if (errorCode(error) !== 'ENOENT' || attempt >= MAX_RENAME_ATTEMPTS) throw error;
    }
  }
  await syncDirectory(parent);
}

const MAX_RENAME_ATTEMPTS = 10;

/** Best-effort removal of a temp file on a failure path; never masks the original error. */
export async function discard(tempFile: string): Promise<void> {
  await rm(tempFile, { force: true }).catch(() => {});
}
