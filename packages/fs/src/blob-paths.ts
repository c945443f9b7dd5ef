// Blob paths are `/`-separated relative paths chosen by the engine. They are
// checked before any file-system call so no path can reach outside `root`.
import { resolve, sep } from 'node:path';
import { AttacheError, checkBlobPath } from '@attache/core';

export interface BlobPathResolver {
  readonly root: string;
  readonly tempDir: string;
  /** Absolute file path of a blob; throws `invalid_key` for malformed or escaping paths. */
  toFile(blobPath: string): string;
  /** The directory where listing `prefix` starts, plus the name prefix its entries must match. */
  listStart(prefix: string): { directory: string; blobDirectory: string; namePrefix: string };
}

export function blobPathResolver(rootOption: string, tempDirOption: string | undefined): BlobPathResolver {
  const root = resolve(rootOption);
  const tempDir = resolve(tempDirOption ?? resolve(root, '.tmp'));

  function invalid(blobPath: string, why: string): never {
    throw new AttacheError('invalid_key', `invalid blob path ${JSON.stringify(blobPath)}: ${why}`);
  }

  function inside(file: string, directory: string): boolean {
    return file.startsWith(directory.endsWith(sep) ? directory : directory + sep);
  }

  function toDirectory(blobPath: string, segments: readonly string[]): string {
    checkBlobPath(segments.join('/'));
    const file = resolve(root, ...segments);
    // Belt and braces: also catches platform quirks such as drive letters.
    if (!inside(file, root)) invalid(blobPath, 'resolves outside the root');
    if (file === tempDir || inside(file, tempDir)) invalid(blobPath, 'inside the temporary directory');
    return file;
  }

  return {
    root,
    tempDir,
    toFile(blobPath) {
      if (typeof blobPath !== 'string' || blobPath === '') invalid(String(blobPath), 'empty');
      return toDirectory(blobPath, blobPath.split('/'));
    },
    listStart(prefix) {
      const slash = prefix.lastIndexOf('/');
      const blobDirectory = prefix.slice(0, Math.max(slash, 0));
      const namePrefix = prefix.slice(slash + 1);
      if (namePrefix.includes('\\') || namePrefix.includes('\0')) invalid(prefix, 'invalid character');
      if (blobDirectory === '') {
        if (slash === 0) invalid(prefix, 'absolute');
        return { directory: root, blobDirectory, namePrefix };
      }
      return { directory: toDirectory(prefix, blobDirectory.split('/')), blobDirectory, namePrefix };
    },
  };
}
