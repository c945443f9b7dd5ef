// One `attache serve` per embedded data directory (docs/deployment.md): two
// processes on one SQLite file and blob directory would each sweep the
// other's in-flight writes. The lock is `<dataDir>/attache.lock`, created
// with O_EXCL and holding the owner's PID, its start time and a random
// token. It is removed on close and on process exit; after a SIGKILL or a
// power cut it stays behind, and the next start finds its PID dead (or
// alive but started at another time: a reused PID, e.g. PID 1 in a
// restarted container) and takes it over.
import { randomUUID } from 'node:crypto';
import { linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE_NAME = 'attache.lock';

interface LockRecord {
  pid: number;
  /** Kernel start time of `pid` (Linux `/proc/<pid>/stat` field 22), null where unknown. */
  startTime: string | null;
  token: string;
}

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Idempotent, synchronous (also runs from `process.on('exit')`). */
  release(): void;
}

/** Another live process holds the data directory. */
export class DataDirLockedError extends Error {
  readonly holderPid: number;

  constructor(dataDir: string, holderPid: number) {
    super(
      `data directory ${dataDir} is in use by another attache process (PID ${holderPid}); ` +
        'run one process per data directory: stop that one, or give this one its own --data-dir',
    );
    this.name = 'DataDirLockedError';
    this.holderPid = holderPid;
  }
}

/** Data directories locked by this process, so two serve() calls in one process also exclude each other. */
const heldHere = new Set<string>();

/**
 * Takes the lock of `dataDir` (which must exist) or throws
 * `DataDirLockedError`. File-system errors (EACCES, EROFS…) are thrown as they are.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE_NAME);
  if (heldHere.has(path)) throw new DataDirLockedError(dataDir, process.pid);
  const mine: LockRecord = { pid: process.pid, startTime: processStartTime(process.pid), token: randomUUID() };

  // Each round either creates the file, refuses (a live holder), or removes a
  // stale lock and tries again; a few rounds cover racing starters.
  for (let attempt = 0; ; attempt++) {
    if (tryCreate(path, mine)) break;
    const holder = readRecord(path);
    if (holder === 'missing') continue; // released meanwhile
    if (holder !== 'unreadable' && isAlive(holder)) throw new DataDirLockedError(dataDir, holder.pid);
    // An unreadable file is a lock whose writer died between create and
    // write (or garbage): as stale as a dead PID.
    if (attempt >= 5) throw new Error(`cannot take over the stale lock ${path}`);
    removeStale(path, holder);
  }

  heldHere.add(path);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    heldHere.delete(path);
    process.off('exit', release);
    const current = readRecord(path);
    if (typeof current === 'object' && current.token === mine.token) {
      try {
        unlinkSync(path);
      } catch {
        // Gone already; nothing to release.
      }
    }
  };
  // SIGTERM goes through close(); this catches exits that skip it.
  process.on('exit', release);
  return { path, release };
}

function tryCreate(path: string, record: LockRecord): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, `${JSON.stringify(record)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readRecord(path: string): LockRecord | 'missing' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockRecord>;
    if (typeof parsed.pid === 'number' && Number.isSafeInteger(parsed.pid) && parsed.pid > 0 && typeof parsed.token === 'string') {
      return { pid: parsed.pid, startTime: typeof parsed.startTime === 'string' ? parsed.startTime : null, token: parsed.token };
    }
  } catch {
    // Fall through: not a lock record.
  }
  return 'unreadable';
}

function isAlive(holder: LockRecord): boolean {
  // Our own PID in a lock we do not hold (heldHere says so): left by an
  // earlier process that had this PID.
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's process.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const startTime = processStartTime(holder.pid);
  // Same PID, different start time: the PID was reused by an unrelated process.
  return holder.startTime === null || startTime === null || startTime === holder.startTime;
}

/**
 * Moves the stale lock aside and deletes it, but only if what was moved is
 * the stale record we judged: if another starter replaced it with a live
 * lock in between, that one is put back (link(2) never overwrites).
 */
function removeStale(path: string, judged: LockRecord | 'unreadable'): void {
  const aside = `${path}.${randomUUID()}.stale`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = readRecord(aside);
  const same =
    judged === 'unreadable' ? moved === 'unreadable' : typeof moved === 'object' && moved.token === judged.token;
  if (!same) {
    try {
      linkSync(aside, path);
    } catch {
      // Someone created a new lock meanwhile: theirs stands.
    }
  }
  unlinkSync(aside);
}

/** Linux: field 22 of /proc/<pid>/stat (clock ticks since boot). Null elsewhere. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}
