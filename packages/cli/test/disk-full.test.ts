// A full disk under `attache serve`: clients get 503 `unavailable` with
// Retry-After (never 500), the log names the real cause (ENOSPC,
// SQLITE_FULL) once, and once space is freed everything works again with
// nothing corrupt or orphaned. The built bin in a child process on a small
// tmpfs, driven over real HTTP; the disk is filled from outside the server.
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  acquire,
  assertBuilt,
  download,
  killLeftovers,
  leaseHeaders,
  release,
  startServer,
  stopServer,
  upload,
  uploadStaged,
  withTempDir,
  type LeaseHeaders,
  type RunningCli,
} from './process-helpers.js';
import { mountTmpfs, type Tmpfs } from './tmpfs.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  killLeftovers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Mounts a tmpfs for this test, or says why the test must skip. */
async function tmpfs(options: { sizeBytes: number; inodes?: number; at?: string }): Promise<Tmpfs | string> {
  const mounted = await mountTmpfs(options);
  if ('skipReason' in mounted) return mounted.skipReason;
  cleanups.push(() => mounted.unmount());
  return mounted;
}

function bytes(size: number, seed: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(size).map((_, index) => (index * 31 + seed) % 251);
}

/** Writes `file` until the file system says ENOSPC. */
function fillBlocks(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (const chunk of [MiB, 4096]) {
      const buffer = new Uint8Array(chunk);
      for (;;) {
        try {
          writeSync(fd, buffer);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Creates empty files in `directory` until no inode is left. */
function fillInodes(directory: string): void {
  for (let index = 0; ; index++) {
    try {
      closeSync(openSync(join(directory, `inode-${index}`), 'w'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return;
      throw error;
    }
  }
}

async function filesUnder(root: string, directory = root): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true }).catch(() => []);
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(root, path)));
    else files.push(relative(root, path));
  }
  return files.sort();
}

async function rollback(url: string, lease: LeaseHeaders): Promise<Response> {
  return fetch(`${url}/v1/release`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fencing-token': lease.fencingToken },
    body: JSON.stringify({ key: lease.key, lease_id: lease.leaseId, txn_id: lease.txnId, rollback: true }),
  });
}

/**
 * The body is exactly `expected`. Compared as buffers: vitest's element-wise
 * toEqual takes tens of seconds for a few MiB on a loaded 2-core machine.
 */
async function expectBytes(response: Response, expected: Uint8Array): Promise<void> {
  const received = Buffer.from(await response.arrayBuffer());
  expect(received.byteLength).toBe(expected.byteLength);
  expect(received.equals(expected), 'the bytes differ').toBe(true);
}

async function expectUnavailable(response: Response): Promise<void> {
  const body = (await response.json()) as { error: string; retry_after_seconds?: number };
  expect(response.status, JSON.stringify(body)).toBe(503);
  expect(body.error).toBe('unavailable');
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

/** 503 while the disk is full, or 200 when this call happened to need no new space; never anything else. */
async function okOrUnavailable(response: Response): Promise<number> {
  if (response.status !== 200) await expectUnavailable(response);
  else await response.body?.cancel();
  return response.status;
}

/** After the server stopped: the database is intact, and every blob file is referenced or queued for deletion. */
async function expectConsistent(dataDir: string): Promise<void> {
  const database = new Database(join(dataDir, 'attache.db'), { readonly: true });
  try {
    expect(database.pragma('integrity_check', { simple: true })).toBe('ok');
    const rows = database.prepare('select blob_path from attache_attachments').pluck().all() as string[];
    const queued = database.prepare('select blob_path from attache_garbage').pluck().all() as string[];
    const known = new Set([...rows, ...queued]);
    const blobs = join(dataDir, 'blobs');
    // Blobs are files, or rows of attache_blob_data when small (ATTACHE_INLINE_MAX_BYTES).
    const inline = database.prepare('select path from attache_blob_data').pluck().all() as string[];
    const files = [...(await filesUnder(blobs)).filter((file) => file.startsWith('state/')), ...inline];
    expect(files.filter((file) => !known.has(file))).toEqual([]);
    for (const row of rows) expect(files).toContain(row);
    expect((await filesUnder(join(blobs, '.tmp'))).filter((file) => file.endsWith('.part'))).toEqual([]);
  } finally {
    database.close();
  }
}

/** The lines naming this outage; the server logs it once however many requests fail. */
function outageLines(server: RunningCli): string[] {
  return server.output.stderr.split('\n').filter((line) => line.includes('answering 503 unavailable'));
}

describe('attache serve on a full disk', () => {
  it('answers 503 with Retry-After while the data directory (SQLite and blobs) is full, and recovers fully once space is freed', async (context) => {
    const disk = await tmpfs({ sizeBytes: 20 * MiB });
    if (typeof disk === 'string') return context.skip(disk);
    const dataDir = join(disk.path, 'data');
    const server = await startServer(dataDir);

    const before = await acquire(server.url, 'orders/before');
    expect((await upload(server.url, before, 'a.bin', bytes(100_000, 1))).status).toBe(200);
    expect((await release(server.url, before)).status).toBe(200);
    const held = await acquire(server.url, 'orders/held');
    expect((await upload(server.url, held, 'staged.bin', bytes(1 * MiB, 2))).status).toBe(200);
    const dropped = await acquire(server.url, 'orders/dropped');
    expect((await upload(server.url, dropped, 'staged.bin', bytes(1 * MiB, 3))).status).toBe(200);

    const filler = join(disk.path, 'filler');
    fillBlocks(filler);
    for (let attempt = 0; attempt < 3; attempt++) {
      await expectUnavailable(await upload(server.url, held, `big-${attempt}.bin`, bytes(2 * MiB, 4)));
    }
    // Metadata writes may still fit in SQLite's WAL, or fail with SQLITE_FULL: 200 or 503, never 500.
    await okOrUnavailable(await fetch(`${server.url}/v1/acquire`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'orders/new', ttl_seconds: 30, owner: 't' }),
    }));
    const rolledBackWhileFull = await okOrUnavailable(await rollback(server.url, dropped));
    // Reads need no space.
    expect((await download(server.url, 'orders/before', 'a.bin')).status).toBe(200);

    expect(server.output.stderr).not.toContain('cannot rollback');
    expect(server.output.stderr).not.toContain('unexpected error');
    const lines = outageLines(server);
    expect(lines.filter((line) => line.includes('blob storage is full (ENOSPC)'))).toHaveLength(1);
    for (const line of lines) expect(line).toMatch(/ENOSPC|SQLITE_FULL/);

    await rm(filler);
    expect((await upload(server.url, held, 'big.bin', bytes(2 * MiB, 4))).status).toBe(200);
    expect((await release(server.url, held)).status).toBe(200);
    if (rolledBackWhileFull !== 200) expect((await rollback(server.url, dropped)).status).toBe(200);
    const downloaded = await download(server.url, 'orders/held', 'big.bin');
    await expectBytes(downloaded, bytes(2 * MiB, 4));
    // Once in a while the server has closed an idle keep-alive connection of
    // the disk-full phase without `Connection: close` (seen only after the
    // 503s; reported, not yet explained), and fetch reuses it: a GET may be
    // sent again.
    const droppedRead = await download(server.url, 'orders/dropped', 'staged.bin').catch(() =>
      download(server.url, 'orders/dropped', 'staged.bin'),
    );
    expect(droppedRead.status).toBe(404);
    const after = await acquire(server.url, 'orders/after');
    expect((await upload(server.url, after, 'c.bin', bytes(10_000, 5))).status).toBe(200);
    expect((await release(server.url, after)).status).toBe(200);

    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
    await expectConsistent(dataDir);
  });

  it('still commits and rolls back (freeing space) while only the blob disk is full', async (context) => {
    const dataDir = (await withTempDirCleaned()).path;
    const blobs = join(dataDir, 'blobs');
    await mkdir(blobs, { recursive: true });
    const disk = await tmpfsAt(blobs, 20 * MiB);
    if (typeof disk === 'string') return context.skip(disk);
    const server = await startServer(dataDir);

    const committing = await acquire(server.url, 'orders/commit');
    expect((await upload(server.url, committing, 'kept.bin', bytes(1 * MiB, 6))).status).toBe(200);
    const dropping = await acquire(server.url, 'orders/rollback');
    expect((await upload(server.url, dropping, 'dropped.bin', bytes(4 * MiB, 7))).status).toBe(200);

    const filler = join(disk.path, 'filler');
    fillBlocks(filler);
    await expectUnavailable(await upload(server.url, committing, 'more.bin', bytes(1 * MiB, 8)));
    expect((await release(server.url, committing)).status).toBe(200);
    expect((await rollback(server.url, dropping)).status).toBe(200);
    const kept = await download(server.url, 'orders/commit', 'kept.bin');
    await expectBytes(kept, bytes(1 * MiB, 6));
    // The rollback freed its 4 MiB: a new upload fits without touching the filler.
    const next = await acquire(server.url, 'orders/next');
    expect((await upload(server.url, next, 'fits.bin', bytes(2 * MiB, 9))).status).toBe(200);
    expect((await release(server.url, next)).status).toBe(200);
    expect(outageLines(server)).toHaveLength(1);

    await rm(filler);
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
    await expectConsistent(dataDir);
  });

  it('answers 200 to a release whose metadata committed but whose promotion hit ENOSPC, and the sweeper promotes it later', async (context) => {
    const dataDir = (await withTempDirCleaned()).path;
    const blobs = join(dataDir, 'blobs');
    await mkdir(blobs, { recursive: true });
    const disk = await tmpfsAt(blobs, 20 * MiB, 200);
    if (typeof disk === 'string') return context.skip(disk);
    const server = await startServer(dataDir, { ATTACHE_SWEEP_INTERVAL_SECONDS: '1' });

    const lease = await acquire(server.url, 'orders/promote');
    expect((await uploadStaged(server.url, lease, 'scan.bin', bytes(300_000, 10))).status).toBe(200);
    expect(await filesUnder(blobs)).not.toContainEqual(expect.stringMatching(/^state\/default\/orders\/promote\//));
    // Promotion creates state/<ns>/<key>/attachments/: no inode left for it.
    const fillerDir = join(disk.path, 'filler');
    await mkdir(fillerDir);
    fillInodes(fillerDir);
    expect((await release(server.url, lease)).status).toBe(200);
    const served = await download(server.url, 'orders/promote', 'scan.bin');
    await expectBytes(served, bytes(300_000, 10));

    await rm(fillerDir, { recursive: true });
    const deadline = Date.now() + 10_000;
    while (!(await filesUnder(blobs)).some((file) => file.startsWith('state/default/orders/promote/attachments/'))) {
      if (Date.now() > deadline) throw new Error('the sweeper did not promote the blob within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
    await expectConsistent(dataDir);
    const database = new Database(join(dataDir, 'attache.db'), { readonly: true });
    const paths = database.prepare('select blob_path from attache_attachments').pluck().all() as string[];
    database.close();
    expect(paths).toEqual([expect.stringMatching(/^state\/default\/orders\/promote\/attachments\//)]);
  });
});

async function withTempDirCleaned(): Promise<{ path: string }> {
  const dir = await withTempDir();
  cleanups.push(dir.remove);
  return dir;
}

/** A tmpfs mounted over `directory` (unmounted before the directory is removed). */
async function tmpfsAt(directory: string, sizeBytes: number, inodes?: number): Promise<Tmpfs | string> {
  return tmpfs({ sizeBytes, at: directory, ...(inodes === undefined ? {} : { inodes }) });
}
