// `BlobStore` on the local file system (Node and Bun).
//
// Every write goes to a temp file in `tempDir` (default `<root>/.tmp`, on the
// same file system so rename is atomic), is fsynced, then renamed over the
// target and the target's directory is fsynced. A blob file is never modified
// in place: that is what makes hard-link copies and concurrent reads safe.
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, opendir, readdir, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { AttacheError, checkByteRange, type BlobInfo, type BlobStore, type ByteRange } from '@attache/core';
import { blobPathResolver } from './blob-paths.js';
import { discard, errorCode, renameIntoPlace, syncDirectory } from './durability.js';
import { fileStream } from './file-stream.js';
import { writeBehind } from './write-behind.js';

export interface FsBlobsOptions {
  /** Directory holding the blobs; created on first write. */
  root: string;
  /** Where writes are staged before the rename; must be on the same file system as `root`. Default `<root>/.tmp`. */
  tempDir?: string;
}

/** ENOTDIR: a path component is a file, so the blob cannot exist either. */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);
/** Hard links unsupported between these paths: fall back to a byte copy. */
const LINK_UNSUPPORTED = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS']);
/** The disk cannot take writes now; an operator can fix that, so clients should retry (503), not see a bug (500). */
const CANNOT_WRITE: Readonly<Record<string, string>> = {
  ENOSPC: 'is full',
  EDQUOT: 'is over its quota',
  EROFS: 'is read-only',
};
/** A full disk is freed by an operator or the sweeper, not in a second. */
const CANNOT_WRITE_RETRY_AFTER_SECONDS = 10;
/** Bytes read ahead while a write is in flight; they go out in one writev when it finishes. */
const MAX_GATHERED_BYTES = 1024 * 1024;

/** `unavailable` for a disk that is full, over quota or read-only; any other error unchanged. */
function unwritable(error: unknown): unknown {
  const code = errorCode(error);
  const why = code === undefined ? undefined : CANNOT_WRITE[code];
  if (why === undefined) return error;
  return new AttacheError('unavailable', `blob storage ${why} (${code}); retry later`, {
    retryAfterSeconds: CANNOT_WRITE_RETRY_AFTER_SECONDS,
    cause: error,
  });
}

export function fsBlobs(options: FsBlobsOptions): BlobStore {
  const paths = blobPathResolver(options.root, options.tempDir);

  const tempFileName = (): string => join(paths.tempDir, `${randomUUID()}.part`);

  async function newTempFile(): Promise<string> {
    await mkdir(paths.tempDir, { recursive: true });
    return tempFileName();
  }

  let tempDirMade = false;
  /** Opens a new temp file for writing; the temp directory is made once (again if it was removed). */
  async function openTempFile(): Promise<{ tempFile: string; handle: FileHandle }> {
    const tempFile = tempFileName();
    if (!tempDirMade) {
      await mkdir(paths.tempDir, { recursive: true });
      tempDirMade = true;
    }
    try {
      return { tempFile, handle: await open(tempFile, 'wx') };
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
      await mkdir(paths.tempDir, { recursive: true });
      return { tempFile, handle: await open(tempFile, 'wx') };
    }
  }

  async function put(
    blobPath: string,
    body: ReadableStream<Uint8Array>,
    putOptions: { signal?: AbortSignal } = {},
  ): Promise<{ size: number }> {
    const { signal } = putOptions;
    const reader = body.getReader();
    // Cancelling the reader settles a pending `read()` as done, so the loop ends promptly.
    const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
    let tempFile: string | undefined;
    try {
      const target = paths.toFile(blobPath);
      if (signal?.aborted) throw signal.reason;
      signal?.addEventListener('abort', onAbort, { once: true });
      const opened = await openTempFile();
      tempFile = opened.tempFile;
      const { handle } = opened;
      let size = 0;
      const writer = writeBehind(handle, MAX_GATHERED_BYTES);
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (signal?.aborted) throw signal.reason;
          if (done) break;
          if (!(value instanceof Uint8Array)) throw new TypeError('blob stream chunks must be Uint8Array');
          await writer.write(value);
          size += value.byteLength;
        }
        await writer.finish();
        await handle.sync();
      } finally {
        // A write may still be in flight after a failure; the file is closed (and discarded) after it.
        await writer.settled();
        await handle.close();
      }
      await renameIntoPlace(tempFile, target);
      return { size };
    } catch (error) {
      // Tell the producer to stop; a no-op when the stream itself errored.
      await reader.cancel(error).catch(() => {});
      if (tempFile !== undefined) await discard(tempFile);
      throw unwritable(error);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      reader.releaseLock();
    }
  }

  async function get(blobPath: string, range?: ByteRange): Promise<ReadableStream<Uint8Array> | undefined> {
    const file = paths.toFile(blobPath);
    if (range !== undefined) checkByteRange(range);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? '')) return undefined;
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) {
        await handle.close();
        return undefined;
      }
      // The size is fixed: blob files are replaced by rename, never rewritten.
      const endExclusive = Math.min(range === undefined ? info.size : range.end + 1, info.size);
      return fileStream(handle, range?.start ?? 0, endExclusive);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async function statBlob(blobPath: string): Promise<BlobInfo | undefined> {
    const file = paths.toFile(blobPath);
    try {
      const info = await stat(file);
      return info.isFile() ? { path: blobPath, size: info.size, modifiedAt: Math.floor(info.mtimeMs) } : undefined;
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? '')) return undefined;
      throw error;
    }
  }

  async function copy(from: string, to: string): Promise<void> {
    const source = paths.toFile(from);
    const target = paths.toFile(to);
    const tempFile = await newTempFile().catch((error: unknown) => {
      throw unwritable(error);
    });
    try {
      try {
        // O(1) and atomic; safe because blob files are never modified in place.
        await link(source, tempFile);
      } catch (error) {
        const code = errorCode(error) ?? '';
        if (MISSING.has(code)) throw new AttacheError('not_found', `blob "${from}" does not exist`, { cause: error });
        if (!LINK_UNSUPPORTED.has(code)) throw error;
        await copyFile(source, tempFile, constants.COPYFILE_EXCL);
        const handle = await open(tempFile, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await renameIntoPlace(tempFile, target);
      // When `target` already was a link to the same file (a retried
      // promotion), rename(2) does nothing and leaves the temp name behind.
      await discard(tempFile);
    } catch (error) {
      await discard(tempFile);
      throw unwritable(error);
    }
  }

  /** Temp files of writes that never finished (a crashed process), last written before `olderThan`. */
  async function purgeTemporary(olderThan: number): Promise<number> {
    let purged = 0;
    let entries: string[];
    try {
      entries = await readdir(paths.tempDir);
    } catch (error) {
      if (MISSING.has(errorCode(error) ?? '')) return 0;
      throw error;
    }
    for (const entry of entries) {
      if (!entry.endsWith('.part')) continue;
      const file = join(paths.tempDir, entry);
      const info = await stat(file).catch(() => undefined);
      if (info === undefined || info.mtimeMs >= olderThan) continue;
      await unlink(file).then(
        () => (purged += 1),
        () => {},
      );
    }
    return purged;
  }

  async function deleteBlob(blobPath: string): Promise<void> {
    const file = paths.toFile(blobPath);
    try {
      await unlink(file);
    } catch (error) {
      const code = errorCode(error) ?? '';
      if (MISSING.has(code)) return;
      // unlink of a directory: EISDIR on Linux, EPERM on macOS. Not a blob, so nothing to delete.
      if ((code === 'EISDIR' || code === 'EPERM') && (await lstat(file)).isDirectory()) return;
      throw unwritable(error);
    }
    // Durable, so a deleted blob cannot reappear after a crash as an orphan.
    await syncDirectory(dirname(file));
    await pruneEmptyParents(dirname(file), paths.root);
  }

  async function* list(prefix: string): AsyncIterable<BlobInfo> {
    const start = paths.listStart(prefix);
    yield* walk(start.directory, start.blobDirectory, start.namePrefix, paths.tempDir);
  }

  return { put, get, stat: statBlob, copy, delete: deleteBlob, list, purgeTemporary };
}

const KEPT_LEVELS = 2;

/** How many path segments `directory` lies below `root`; 0 for root itself or a path outside it. */
function depthBelow(root: string, directory: string): number {
  const path = relative(root, directory);
  if (path === '' || path.startsWith('..') || isAbsolute(path)) return 0;
  return path.split(sep).length;
}

/**
 * Removes now-empty directories from `directory` up, keeping `root` and the
 * two levels below it (`state/<namespace>`, `state/~staging`): they are few
 * and reused all the time, and removing one would cost the next write a
 * mkdir plus an fsync of its parent.
 */
async function pruneEmptyParents(directory: string, root: string): Promise<void> {
  for (let current = directory; depthBelow(root, current) > KEPT_LEVELS; current = dirname(current)) {
    try {
      await rmdir(current);
    } catch (error) {
      const code = errorCode(error);
      // Gone already (a concurrent delete): its parent may still be empty.
      if (code === 'ENOENT') continue;
      // Not empty, or a concurrent put is filling it: stop.
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return;
      throw error;
    }
  }
}

/**
 * Yields the files below `directory` (whose blob path is `blobDirectory`).
 * At the top level only entries starting with `namePrefix` are visited, so a
 * prefix walks just the subtree that can match it.
 */
async function* walk(
  directory: string,
  blobDirectory: string,
  namePrefix: string,
  tempDir: string,
): AsyncGenerator<BlobInfo> {
  let entries;
  try {
    entries = await opendir(directory);
  } catch (error) {
    if (MISSING.has(errorCode(error) ?? '')) return;
    throw error;
  }
  // `for await` over a Dir streams entries and closes it, also on early exit.
  for await (const entry of entries) {
    if (!entry.name.startsWith(namePrefix)) continue;
    const file = join(directory, entry.name);
    const blobPath = blobDirectory === '' ? entry.name : `${blobDirectory}/${entry.name}`;
    if (entry.isDirectory()) {
      if (file !== tempDir) yield* walk(file, blobPath, '', tempDir);
    } else if (entry.isFile()) {
      try {
        const info = await stat(file);
        yield { path: blobPath, size: info.size, modifiedAt: Math.floor(info.mtimeMs) };
      } catch (error) {
        // Deleted while we were listing.
        if (!MISSING.has(errorCode(error) ?? '')) throw error;
      }
    }
  }
}

