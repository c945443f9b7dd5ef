// Helpers that make directory entries durable: a rename or link is only
// crash-safe once the directory holding the new entry has been fsynced.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sharedSync, type SharedSync } from '@attache/core';

export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

async function fsyncDirectory(directory: string): Promise<void> {
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

/** Directories being fsynced now, with how many callers wait on each. */
const syncing = new Map<string, { shared: SharedSync; waiting: number }>();

/**
 * fsyncs `directory` (so entries made in it so far are durable). Callers
 * that wait on the same directory at the same time share fsyncs: many
 * uploads into one directory need one or two, not one each.
 */
export async function syncDirectory(directory: string): Promise<void> {
  let entry = syncing.get(directory);
  if (entry === undefined) {
    entry = { shared: sharedSync({ fsync: () => fsyncDirectory(directory), close: async () => {} }), waiting: 0 };
    syncing.set(directory, entry);
  }
  entry.waiting += 1;
  try {
    await entry.shared.sync();
  } finally {
    entry.waiting -= 1;
    if (entry.waiting === 0 && syncing.get(directory) === entry) syncing.delete(directory);
  }
}

/** `mkdir -p`; returns the parents of the directories it created, which need an fsync for those to survive a crash. */
async function makeDirectories(directory: string): Promise<string[]> {
  const firstCreated = await mkdir(directory, { recursive: true });
  if (firstCreated === undefined) return [];
  const parents: string[] = [];
  for (let current = directory; current !== dirname(firstCreated); current = dirname(current)) {
    parents.push(dirname(current));
  }
  return parents;
}

/**
 * Moves a finished temp file to `target` atomically and durably: the
 * directories created for it and the one it lands in are fsynced (at once)
 * before this resolves. A concurrent `delete` may prune the parent
 * directories while we create them or before we rename into them (ENOENT),
 * so that step is retried.
 */
export async function renameIntoPlace(tempFile: string, target: string): Promise<void> {
  const parent = dirname(target);
  const toSync = new Set<string>();
  for (let attempt = 1; ; attempt++) {
    try {
      for (const created of await makeDirectories(parent)) toSync.add(created);
      await rename(tempFile, target);
      break;
    } catch (error) {
      if (errorCode(error) !== 'ENOENT' || attempt >= MAX_RENAME_ATTEMPTS) throw error;
    }
  }
  toSync.add(parent);
  await Promise.all([...toSync].map((directory) => syncDirectory(directory)));
}

const MAX_RENAME_ATTEMPTS = 10;

/** Best-effort removal of a temp file on a failure path; never masks the original error. */
export async function discard(tempFile: string): Promise<void> {
  await rm(tempFile, { force: true }).catch(() => {});
}
