// A small tmpfs for tests that need a full or read-only file system. Mounting
// needs root (CI runs as root); elsewhere `mountTmpfs` says why it cannot,
// and the test skips with that reason. Not a test file itself.
import { execFile } from 'node:child_process';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Tmpfs {
  path: string;
  unmount(): Promise<void>;
}

export interface TmpfsOptions {
  sizeBytes: number;
  /** At most this many files and directories (`nr_inodes`). */
  inodes?: number;
  readOnly?: boolean;
  /** Mount over this existing directory instead of a new temp one (it is kept on unmount). */
  at?: string;
}

/** Mounts a tmpfs or returns why it cannot. */
export async function mountTmpfs(options: TmpfsOptions): Promise<Tmpfs | { skipReason: string }> {
  if (process.platform !== 'linux') return { skipReason: `tmpfs mounts need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { skipReason: 'mounting a tmpfs needs root (CI runs as root)' };
  const path = options.at ?? (await mkdtemp(join(tmpdir(), 'attache-tmpfs-')));
  const removeDirectory = options.at === undefined ? () => rmdir(path) : () => Promise.resolve();
  const flags = [
    `size=${options.sizeBytes}`,
    ...(options.inodes === undefined ? [] : [`nr_inodes=${options.inodes}`]),
    ...(options.readOnly === true ? ['ro'] : []),
  ].join(',');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', flags, 'tmpfs', path]);
  } catch (error) {
    await removeDirectory().catch(() => undefined);
    return { skipReason: `cannot mount a tmpfs here (${error instanceof Error ? error.message.trim() : String(error)})` };
  }
  return {
    path,
    async unmount() {
      // Lazy: a killed server's file handles may still be closing.
      await run('umount', ['-l', path]);
      await removeDirectory();
    },
  };
}
