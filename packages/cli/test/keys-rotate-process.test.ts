// `attache keys rotate` as users run it: the built bin, on the storage a real
// `attache serve` wrote, with the same environment. What clients see before
// and after must be identical, and the data directory must end up holding no
// plaintext.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, DROP_DATABASES_TIMEOUT_MS, dropTestDatabases, type TestDatabase } from '@attache/testing';
import {
  acquire,
  assertBuilt,
  BIN_PATH,
  download,
  killLeftovers,
  release,
  runCli,
  startServer,
  stopServer,
  upload,
  withTempDir,
} from './process-helpers.js';

const encoder = new TextEncoder();
const MARKER = 'ROTATION-PLAINTEXT-MARKER-9d2e';
const K1 = Buffer.alloc(32, 0x41).toString('base64');
const K2 = Buffer.alloc(32, 0x42).toString('base64');
/** Before: k1 active. After: k2 active, k1 still readable. Then: only k2. */
const WITH_K1 = { ATTACHE_MASTER_KEY: K1, ATTACHE_MASTER_KEY_ID: 'k1' };
const ROTATING = { ATTACHE_MASTER_KEY: K2, ATTACHE_MASTER_KEY_ID: 'k2', ATTACHE_OLD_MASTER_KEYS: `k1:${K1}` };
const ONLY_K2 = { ATTACHE_MASTER_KEY: K2, ATTACHE_MASTER_KEY_ID: 'k2' };

const PLAIN_BODY = encoder.encode(`${MARKER} written before encryption was enabled\n`.repeat(3000));
/** Small enough to live in the metadata database (`attache serve` keeps blobs up to 64 KiB there). */
const SMALL_PLAIN_BODY = encoder.encode(`${MARKER} small, written before encryption was enabled\n`.repeat(8));
const K1_BODY = encoder.encode(`${MARKER} written under k1\n`.repeat(10));

async function uploadOne(url: string, key: string, name: string, body: Uint8Array<ArrayBuffer>): Promise<void> {
  const lease = await acquire(url, key);
  expect((await upload(url, lease, name, body)).status).toBe(200);
  expect((await release(url, lease)).status).toBe(200);
}

/** What a client sees of a download: status, bytes and the headers that describe them. */
async function clientView(url: string, key: string, name: string) {
  const response = await download(url, key, name);
  return {
    status: response.status,
    etag: response.headers.get('etag'),
    length: response.headers.get('content-length'),
    lastModified: response.headers.get('last-modified'),
    bytes: new Uint8Array(await response.arrayBuffer()),
  };
}

/** Every file under `dir` that contains `marker`. */
async function filesContaining(dir: string, marker: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(marker)) found.push(path);
  }
  return found;
}

beforeAll(() => assertBuilt());
afterAll(() => killLeftovers());

describe('attache keys rotate (embedded store)', () => {
  it('re-encrypts plaintext and k1 objects to k2: clients see the same bytes, ETags and Last-Modified, no plaintext is left on disk, k1 can go', { timeout: 60_000 }, async () => {
    const dir = await withTempDir();
    try {
      const plain = await startServer(dir.path);
      await uploadOne(plain.url, 'docs', 'plain.txt', PLAIN_BODY);
      await uploadOne(plain.url, 'docs', 'small.txt', SMALL_PLAIN_BODY);
      expect(await stopServer(plain)).toEqual({ code: 0, signal: null });
      const encrypted = await startServer(dir.path, WITH_K1);
      await uploadOne(encrypted.url, 'docs', 'k1.txt', K1_BODY);
      const names = ['plain.txt', 'small.txt', 'k1.txt'];
      const before = [];
      for (const name of names) before.push(await clientView(encrypted.url, 'docs', name));
      expect(await stopServer(encrypted)).toEqual({ code: 0, signal: null });
      // The marker test can fail: the plaintext objects are on disk as they are, the small one in the database.
      const plaintextFiles = (await filesContaining(dir.path, MARKER)).map((path) => relative(dir.path, path));
      expect(plaintextFiles).toHaveLength(2);
      expect(plaintextFiles).toContain('attache.db');

      const rotate = runCli(['keys', 'rotate', '--json'], { ATTACHE_DATA_DIR: dir.path, ...ROTATING });
      expect(await rotate.exited).toEqual({ code: 0, signal: null });
      // Piped stderr: no progress bar, nothing at all.
      expect(rotate.output.stderr).toBe('');
      const report = JSON.parse(rotate.output.stdout) as Record<string, unknown>;
      expect(report).toMatchObject({
        activeKeyId: 'k2',
        totalObjects: 3,
        totalBytes: PLAIN_BODY.byteLength + SMALL_PLAIN_BODY.byteLength + K1_BODY.byteLength,
        rotated: 3,
        failed: [],
        remaining: 0,
        deletedBlobs: 3,
      });
      // Also not in the database's free pages, nor in its write-ahead log.
      expect(await filesContaining(dir.path, MARKER)).toEqual([]);

      const after = await startServer(dir.path, ONLY_K2);
      const afterViews = [];
      for (const name of names) afterViews.push(await clientView(after.url, 'docs', name));
      expect(afterViews).toEqual(before);
      expect(before[0]!.bytes).toEqual(PLAIN_BODY);
      expect(before[1]!.bytes).toEqual(SMALL_PLAIN_BODY);
      expect(await stopServer(after)).toEqual({ code: 0, signal: null });

      // Run again: nothing left to do.
      const again = runCli(['keys', 'rotate'], { ATTACHE_DATA_DIR: dir.path, ...ONLY_K2 });
      expect(await again.exited).toEqual({ code: 0, signal: null });
      expect(again.output.stdout).toContain('rotated 0 objects (0.0 MiB) to key k2; 0 remaining under other keys or in plaintext');
    } finally {
      await dir.remove();
    }
  });

  it('draws a progress bar on stderr when it is a terminal (under script(1))', { timeout: 30_000 }, async () => {
    const dir = await withTempDir();
    try {
      const server = await startServer(dir.path);
      await uploadOne(server.url, 'docs', 'two.bin', new Uint8Array(2 * 1024 * 1024).fill(7));
      expect(await stopServer(server)).toEqual({ code: 0, signal: null });
      const command = ['node', BIN_PATH, 'keys', 'rotate'].map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(' ');
      // script(1) runs the command on a fresh pseudo-terminal and copies what it draws to our stdout.
      const { stdout } = await promisify(execFile)('script', ['-qec', command, '/dev/null'], {
        env: { PATH: process.env.PATH ?? '', ATTACHE_DATA_DIR: dir.path, ...ONLY_K2 },
      });
      expect(stdout).toMatch(/rotate to k2 [█░]{30} 100% \| 2\.0\/2\.0 MiB \| [\d.]+ MiB\/s/);
      expect(stdout).toContain('rotated 1 object (2.0 MiB) to key k2; 0 remaining under other keys or in plaintext');
    } finally {
      await dir.remove();
    }
  });

  it('refuses to run while a server holds the data directory (exit 1), and names the way out', { timeout: 30_000 }, async () => {
    const dir = await withTempDir();
    try {
      const server = await startServer(dir.path, WITH_K1);
      const rotate = runCli(['keys', 'rotate'], { ATTACHE_DATA_DIR: dir.path, ...ROTATING });
      expect((await rotate.exited).code).toBe(1);
      expect(rotate.output.stderr).toContain('is in use by another attache process');
      expect(await stopServer(server)).toEqual({ code: 0, signal: null });
    } finally {
      await dir.remove();
    }
  });

  it('exits 1 and lists the objects it could not read when a key is missing; they stay as they were', { timeout: 30_000 }, async () => {
    const dir = await withTempDir();
    try {
      const server = await startServer(dir.path, WITH_K1);
      await uploadOne(server.url, 'docs', 'k1.txt', K1_BODY);
      expect(await stopServer(server)).toEqual({ code: 0, signal: null });
      // k1 not given: its object cannot be read.
      const rotate = runCli(['keys', 'rotate'], { ATTACHE_DATA_DIR: dir.path, ...ONLY_K2 });
      expect((await rotate.exited).code).toBe(1);
      expect(rotate.output.stderr).toMatch(/not rotated: default\/docs k1\.txt \(id [0-9a-f-]+, key k1\): key_unavailable/);
      expect(rotate.output.stdout).toContain('rotated 0 objects (0.0 MiB) to key k2; 1 failed; 1 remaining');
      const reader = await startServer(dir.path, WITH_K1);
      expect((await clientView(reader.url, 'docs', 'k1.txt')).bytes).toEqual(K1_BODY);
      expect(await stopServer(reader)).toEqual({ code: 0, signal: null });
    } finally {
      await dir.remove();
    }
  });
});

describePostgres('attache keys rotate (PostgreSQL)', (serverUrl) => {
  const databases: TestDatabase[] = [];
  afterAll(() => dropTestDatabases(databases), DROP_DATABASES_TIMEOUT_MS);

  it('runs beside a server that keeps serving; the server reads the rotated objects', { timeout: 60_000 }, async () => {
    const database = await createTestDatabase(serverUrl);
    databases.push(database);
    const dir = await withTempDir();
    try {
      const env = { ATTACHE_DATABASE_URL: database.url };
      const first = await startServer(dir.path, { ...env, ...WITH_K1 });
      await uploadOne(first.url, 'docs', 'k1.txt', K1_BODY);
      await uploadOne(first.url, 'docs', 'big.bin', PLAIN_BODY);
      const before = [await clientView(first.url, 'docs', 'k1.txt'), await clientView(first.url, 'docs', 'big.bin')];
      expect(await stopServer(first)).toEqual({ code: 0, signal: null });
      // The server is restarted with the new active key first, then rotation runs beside it.
      const server = await startServer(dir.path, { ...env, ...ROTATING });
      const rotate = runCli(['keys', 'rotate', '--json'], { ATTACHE_DATA_DIR: dir.path, ...env, ...ROTATING });
      const during = await clientView(server.url, 'docs', 'big.bin');
      expect(await rotate.exited).toEqual({ code: 0, signal: null });
      expect(JSON.parse(rotate.output.stdout)).toMatchObject({ rotated: 2, remaining: 0, failed: [] });
      expect(during).toEqual(before[1]);
      expect([await clientView(server.url, 'docs', 'k1.txt'), await clientView(server.url, 'docs', 'big.bin')]).toEqual(before);
      expect(await stopServer(server)).toEqual({ code: 0, signal: null });
      const onlyNew = await startServer(dir.path, { ...env, ...ONLY_K2 });
      expect([await clientView(onlyNew.url, 'docs', 'k1.txt'), await clientView(onlyNew.url, 'docs', 'big.bin')]).toEqual(before);
      expect(await stopServer(onlyNew)).toEqual({ code: 0, signal: null });
    } finally {
      await dir.remove();
    }
  });
});
