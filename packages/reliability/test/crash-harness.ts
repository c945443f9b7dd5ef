// Harness for the crash-point tests (not a test file itself): runs the BUILT
// `attache serve` in child processes, speaks real HTTP to it, and inspects
// what a crash left on disk and in the metadata database without going
// through attache (better-sqlite3 / pg directly), so a bug in the store's
// own bookkeeping cannot hide an orphan.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { BlobStore, EncryptionOptions } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { s3Blobs } from '@attache/s3';
import { attacheS3Environment, createTestDatabase, type S3Connection } from '@attache/testing';

export const BIN_PATH = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));

const LISTENING_LINE = /^attache listening on (http:\/\/\S+)$/m;

export function assertBuilt(): void {
  if (!existsSync(BIN_PATH)) {
    throw new Error(`${BIN_PATH} is missing: build first (pnpm turbo run build --filter=@attache/cli...)`);
  }
}

// ---------------------------------------------------------------------------
// Server processes

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output: { stdout: string; stderr: string };
  exited: Promise<Exit>;
  /** Whether the process has exited (by any means). */
  readonly hasExited: boolean;
}

const children = new Set<ChildProcess>();

/** Our environment minus anything that would configure attache, plus `overrides`. */
function childEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name !== 'PORT' && !name.startsWith('ATTACHE_')) env[name] = value;
  }
  return { ...env, ...overrides };
}

/** Starts `attache serve --port 0 --data-dir <dir>` and resolves once it printed its URL. */
export async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN_PATH, 'serve', '--port', '0', '--data-dir', dataDir], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (output.stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (output.stderr += text));
  let hasExited = false;
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      hasExited = true;
      children.delete(child);
      resolve({ code, signal });
    });
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 15 s; stderr: ${output.stderr}`)), 15_000);
    const onData = (): void => {
      const match = LISTENING_LINE.exec(output.stdout);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`attache exited (${JSON.stringify(exit)}) before listening; stderr: ${output.stderr}`));
    });
  });
  return {
    url,
    child,
    output,
    exited,
    get hasExited() {
      return hasExited;
    },
  };
}

/** Runs `attache keys rotate --json --data-dir <dir>` to its end (or its death); no timeout of its own. */
export async function runKeysRotate(
  dataDir: string,
  env: Record<string, string>,
): Promise<{ exit: Exit; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN_PATH, 'keys', 'rotate', '--json', '--data-dir', dataDir], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (output.stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (output.stderr += text));
  const exit = await new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { exit, ...output };
}

/** SIGTERM (clean shutdown) and wait. */
export async function stopServer(server: ServerProcess): Promise<Exit> {
  if (!server.hasExited) server.child.kill('SIGTERM');
  return server.exited;
}

/** Resolves with the exit, or rejects if the process is still alive after `timeoutMs`. */
export async function waitForExit(server: ServerProcess, timeoutMs: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`server still alive after ${timeoutMs} ms; stderr: ${server.output.stderr}`)), timeoutMs);
  });
  try {
    return await Promise.race([server.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILL, for a test's cleanup; a no-op once the process has exited. */
export function killServer(server: ServerProcess): void {
  if (!server.hasExited) server.child.kill('SIGKILL');
}

/** Kills whatever failed tests left running (every server of this file). */
export function killLeftovers(): void {
  for (const child of children) child.kill('SIGKILL');
}

// ---------------------------------------------------------------------------
// Storage backends: a data directory, and SQLite in it or a fresh PostgreSQL database

export interface AttachmentRowSnapshot {
  name: string;
  state: string;
  txnId: string | null;
  blobPath: string;
  size: number;
  sha256: string;
  crc32: string;
}

export interface MetadataInspector {
  attachmentRows(): Promise<AttachmentRowSnapshot[]>;
  /** Paths queued in `attache_garbage` (deleted-later blobs). */
  garbage(): Promise<string[]>;
  /** Paths of the blobs kept inline in the metadata database (`attache_blob_data`: small blobs, `ATTACHE_INLINE_MAX_BYTES`). */
  inlineBlobs(): Promise<string[]>;
  /** Transactions still `active`. */
  activeTxns(): Promise<string[]>;
}

/** Where the blobs live, seen directly (not through attache). */
export interface BlobInspector {
  kind: 'fs' | 's3';
  /** Stored blobs under `state/`, as blob paths (what `blob_path` holds). */
  stored(): Promise<string[]>;
  /**
   * Writes that never finished, which live outside `state/`: temp files of
   * the fs store, incomplete multipart uploads in S3 (their keys).
   */
  unfinished(): Promise<string[]>;
  /** A store on the same blobs, for setting up state in-process. */
  open(): BlobStore;
}

export interface Backend {
  kind: 'sqlite' | 'postgres';
  dataDir: string;
  /** Environment that points `attache serve` at this backend (besides `--data-dir`). */
  env: Record<string, string>;
  metadata: MetadataInspector;
  blobs: BlobInspector;
  /** Encryption at rest the server runs with (ATTACHE_MASTER_KEY in `env`), for stores opened in this process. */
  encryption?: EncryptionOptions;
  dispose(): Promise<void>;
}

/** The same backend, served with encryption at rest on (ATTACHE_MASTER_KEY, key id k1). */
export function encryptedAtRest(backend: Backend): Backend {
  const key = new Uint8Array(32).fill(0x3c);
  return {
    ...backend,
    env: { ...backend.env, ATTACHE_MASTER_KEY: Buffer.from(key).toString('base64') },
    encryption: { keys: { k1: key }, activeKeyId: 'k1' },
  };
}

function fsInspector(dataDir: string): BlobInspector {
  return {
    kind: 'fs',
    stored: () => blobFiles(dataDir),
    unfinished: () => tempFiles(dataDir),
    open: () => fsBlobs({ root: join(dataDir, 'blobs') }),
  };
}

let bucketPrefixes = 0;

/** A key prefix of its own in the run's S3 bucket; the environment `attache serve` needs for it. */
function s3Inspector(s3: S3Connection): { inspector: BlobInspector; env: Record<string, string>; dispose(): void } {
  const prefix = `crash-${process.pid}-${++bucketPrefixes}/`;
  const connection = { endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true };
  const client = new S3Client(connection);
  const withoutPrefix = (key: string | undefined) => (key ?? '').slice(prefix.length);
  return {
    inspector: {
      kind: 's3',
      async stored() {
        const paths: string[] = [];
        let continuationToken: string | undefined;
        do {
          const page = await client.send(
            new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}state/`, ContinuationToken: continuationToken }),
          );
          paths.push(...(page.Contents ?? []).map((object) => withoutPrefix(object.Key)));
          continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
        } while (continuationToken !== undefined);
        return paths;
      },
      async unfinished() {
        const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }));
        return (uploads.Uploads ?? []).map((upload) => withoutPrefix(upload.Key));
      },
      open: () => s3Blobs({ bucket: s3.bucket, prefix, ...connection }),
    },
    env: attacheS3Environment(s3, prefix),
    dispose: () => client.destroy(),
  };
}

interface RawRow {
  name: string;
  state: string;
  txn_id: string | null;
  blob_path: string;
  size: number | string;
  sha256: string;
  crc32: string;
}

const ROWS_SQL = 'select name, state, txn_id, blob_path, size, sha256, crc32 from attache_attachments';
const GARBAGE_SQL = 'select blob_path from attache_garbage';
const INLINE_BLOBS_SQL = 'select path from attache_blob_data';
const ACTIVE_TXNS_SQL = "select txn_id from attache_txns where state = 'active'";

function toSnapshot(row: RawRow): AttachmentRowSnapshot {
  return {
    name: row.name,
    state: row.state,
    txnId: row.txn_id,
    blobPath: row.blob_path,
    size: Number(row.size),
    sha256: row.sha256,
    crc32: row.crc32,
  };
}

async function newDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'attache-crash-'));
}

export async function sqliteBackend(): Promise<Backend> {
  const dataDir = await newDataDir();
  const filename = join(dataDir, 'attache.db');
  // A fresh read-only connection per query: it sees the latest committed
  // state (WAL) and never holds a lock the server could trip over.
  const query = <T>(sqlText: string): T[] => {
    if (!existsSync(filename)) return [];
    const db = new Database(filename, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sqlText).all() as T[];
    } finally {
      db.close();
    }
  };
  return {
    kind: 'sqlite',
    dataDir,
    env: {},
    blobs: fsInspector(dataDir),
    metadata: {
      attachmentRows: async () => query<RawRow>(ROWS_SQL).map(toSnapshot),
      garbage: async () => query<{ blob_path: string }>(GARBAGE_SQL).map((row) => row.blob_path),
      inlineBlobs: async () => query<{ path: string }>(INLINE_BLOBS_SQL).map((row) => row.path),
      activeTxns: async () => query<{ txn_id: string }>(ACTIVE_TXNS_SQL).map((row) => row.txn_id),
    },
    dispose: () => rm(dataDir, { recursive: true, force: true }),
  };
}

/** PostgreSQL metadata; blobs in the data directory, or under a prefix of their own in `s3`'s bucket. */
export async function postgresBackend(serverUrl: string, s3?: S3Connection): Promise<Backend> {
  const dataDir = await newDataDir();
  const bucket = s3 === undefined ? undefined : s3Inspector(s3);
  const database = await createTestDatabase(serverUrl);
  const query = async <T extends pg.QueryResultRow>(sqlText: string): Promise<T[]> => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      return (await client.query<T>(sqlText)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    kind: 'postgres',
    dataDir,
    env: { ATTACHE_DATABASE_URL: database.url, ...bucket?.env },
    blobs: bucket?.inspector ?? fsInspector(dataDir),
    metadata: {
      attachmentRows: async () => (await query<RawRow>(ROWS_SQL)).map(toSnapshot),
      garbage: async () => (await query<{ blob_path: string }>(GARBAGE_SQL)).map((row) => row.blob_path),
      inlineBlobs: async () => (await query<{ path: string }>(INLINE_BLOBS_SQL)).map((row) => row.path),
      activeTxns: async () => (await query<{ txn_id: string }>(ACTIVE_TXNS_SQL)).map((row) => row.txn_id),
    },
    dispose: async () => {
      bucket?.dispose();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------
// Blob files on disk

/** Every file below `dir`, as `/`-separated paths relative to `base`. */
async function filesUnder(dir: string, base: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path, base)));
    else files.push(relative(base, path).split(sep).join('/'));
  }
  return files;
}

/** Blob files under `<data-dir>/blobs/state/`, as blob paths (`state/...`, what `blob_path` holds). */
export function blobFiles(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs');
  return filesUnder(join(root, 'state'), root);
}

/** Leftover temp files of the fs blob store (`<data-dir>/blobs/.tmp`). */
export function tempFiles(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs');
  return filesUnder(join(root, '.tmp'), root);
}

/**
 * What must hold once a sweep has run after any crash: every blob file is
 * referenced by a row (zero orphans), every row's blob exists, no staged
 * row or tombstone and no active transaction is left of the dead
 * transaction, the garbage queue is drained, and at most `maxTempFiles`
 * unfinished writes (temp files; in S3, incomplete multipart uploads) remain. `allowActiveTxns` is for checks made while a live
 * lease still holds its (empty) transaction. Returns the violations (empty
 * when all hold).
 */
export async function storageProblems(
  backend: Backend,
  options: { maxTempFiles: number; allowActiveTxns?: boolean },
): Promise<string[]> {
  const problems: string[] = [];
  const rows = await backend.metadata.attachmentRows();
  // Blobs live as files (or objects) and, when small, as rows of attache_blob_data.
  const files = new Set([...(await backend.blobs.stored()), ...(await backend.metadata.inlineBlobs())]);
  const referenced = new Set(rows.filter((row) => row.blobPath !== '').map((row) => row.blobPath));
  for (const file of files) if (!referenced.has(file)) problems.push(`orphan blob ${file}`);
  for (const row of rows) {
    if (row.state === 'tombstone') problems.push(`tombstone of txn ${row.txnId} for ${row.name} left`);
    else if (!files.has(row.blobPath)) problems.push(`row ${row.name} (${row.state}) points at missing blob ${row.blobPath}`);
    if (row.state === 'staged') problems.push(`staged row ${row.name} of txn ${row.txnId} left`);
  }
  for (const path of await backend.metadata.garbage()) problems.push(`garbage queued: ${path}`);
  if (!options.allowActiveTxns) {
    for (const txn of await backend.metadata.activeTxns()) problems.push(`transaction ${txn} still active`);
  }
  const temps = await backend.blobs.unfinished();
  if (temps.length > options.maxTempFiles) problems.push(`unfinished writes left: ${temps.join(', ')}`);
  return problems;
}

// ---------------------------------------------------------------------------
// HTTP (API.md §2), only what the scenarios need

export interface LeaseHandle {
  key: string;
  leaseId: string;
  txnId: string;
  fencingToken: string;
}

export async function acquire(url: string, key: string, ttlSeconds: number): Promise<LeaseHandle> {
  const response = await fetch(`${url}/v1/acquire`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, ttl_seconds: ttlSeconds, owner: 'crash-test' }),
  });
  const body = (await response.json()) as { lease_id: string; txn_id: string; fencing_token: number };
  if (response.status !== 200) throw new Error(`acquire ${key}: ${response.status} ${JSON.stringify(body)}`);
  return { key, leaseId: body.lease_id, txnId: body.txn_id, fencingToken: String(body.fencing_token) };
}

export function leaseHeaders(lease: LeaseHandle): Record<string, string> {
  return { 'x-lease-id': lease.leaseId, 'x-txn-id': lease.txnId, 'x-fencing-token': lease.fencingToken };
}

function attachmentsUrl(url: string, key: string, name?: string): string {
  const query = new URLSearchParams({ key });
  if (name !== undefined) query.set('name', name);
  return `${url}/v1/attachments?${query}`;
}

/** Raw-body upload; resolves with the response, rejects if the connection dies. */
export async function uploadRaw(url: string, lease: LeaseHandle, name: string, bytes: Uint8Array<ArrayBuffer>): Promise<Response> {
  return fetch(attachmentsUrl(url, lease.key, name), {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...leaseHeaders(lease) },
    body: bytes,
  });
}

/** One multipart request with a file part per entry (all staged or none). */
export async function uploadMultipart(
  url: string,
  lease: LeaseHandle,
  files: ReadonlyArray<{ name: string; bytes: Uint8Array<ArrayBuffer> }>,
): Promise<Response> {
  const form = new FormData();
  for (const file of files) form.append('file', new Blob([file.bytes], { type: 'application/octet-stream' }), file.name);
  return fetch(attachmentsUrl(url, lease.key), { method: 'POST', headers: leaseHeaders(lease), body: form });
}

export async function deleteAttachment(url: string, lease: LeaseHandle, name: string): Promise<Response> {
  const query = new URLSearchParams({ key: lease.key, name });
  return fetch(`${url}/v1/attachment?${query}`, { method: 'DELETE', headers: leaseHeaders(lease) });
}

export async function release(url: string, lease: LeaseHandle, rollback = false): Promise<Response> {
  return fetch(`${url}/v1/release`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fencing-token': lease.fencingToken },
    body: JSON.stringify({ key: lease.key, lease_id: lease.leaseId, txn_id: lease.txnId, rollback }),
  });
}

export interface VisibleAttachment {
  id: string;
  name: string;
  size: number;
  sha256: string;
  crc32: string;
}

/** The committed list of a key, as a reader without a lease sees it. */
export async function listPublic(url: string, key: string): Promise<VisibleAttachment[]> {
  const response = await fetch(`${attachmentsUrl(url, key)}&public=true`);
  const body = (await response.json()) as { attachments: VisibleAttachment[] };
  if (response.status !== 200) throw new Error(`list ${key}: ${response.status} ${JSON.stringify(body)}`);
  return body.attachments;
}

// ---------------------------------------------------------------------------
// Content and its expected digests

/** Deterministic, incompressible-looking bytes: a crash test must notice a swapped or truncated blob. */
export function pattern(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function crc32Hex(bytes: Uint8Array): string {
  return crc32(bytes).toString(16).padStart(8, '0');
}

/**
 * Compares what a public reader sees of `key` with `expected` (name → bytes;
 * names absent from the map must not be visible): the list, every
 * attachment's bytes and size/SHA-256/CRC-32 headers, by name and by id.
 * Returns the differences (empty when the view is exactly as expected).
 */
export async function visibilityProblems(
  url: string,
  key: string,
  expected: ReadonlyMap<string, Uint8Array>,
): Promise<string[]> {
  const problems: string[] = [];
  const listed = await listPublic(url, key);
  const listedNames = listed.map((entry) => entry.name).sort();
  const expectedNames = [...expected.keys()].sort();
  if (JSON.stringify(listedNames) !== JSON.stringify(expectedNames)) {
    problems.push(`listed ${JSON.stringify(listedNames)}, expected ${JSON.stringify(expectedNames)}`);
  }
  for (const [name, bytes] of expected) {
    const want = { size: bytes.byteLength, sha256: sha256Hex(bytes), crc32: crc32Hex(bytes) };
    const entry = listed.find((candidate) => candidate.name === name);
    if (entry && (entry.size !== want.size || entry.sha256 !== want.sha256 || entry.crc32 !== want.crc32)) {
      problems.push(`${name}: listed ${JSON.stringify(entry)}, expected ${JSON.stringify(want)}`);
    }
    const query = new URLSearchParams({ key, name, public: 'true' });
    const byName = await fetch(`${url}/v1/attachment?${query}`);
    problems.push(...(await downloadProblems(`${name} by name`, byName, bytes)));
    if (entry) {
      const byId = await fetch(`${url}/v1/attachment?${new URLSearchParams({ id: entry.id })}`);
      problems.push(...(await downloadProblems(`${name} by id`, byId, bytes)));
    }
  }
  for (const entry of listed) {
    if (!expected.has(entry.name)) problems.push(`unexpected attachment ${entry.name} visible`);
  }
  return problems;
}

async function downloadProblems(what: string, response: Response, bytes: Uint8Array): Promise<string[]> {
  if (response.status !== 200) return [`${what}: status ${response.status} ${await response.text()}`];
  const body = new Uint8Array(await response.arrayBuffer());
  const problems: string[] = [];
  if (Buffer.compare(body, bytes) !== 0) problems.push(`${what}: ${body.byteLength} bytes differ from the ${bytes.byteLength} expected`);
  const headers = {
    size: response.headers.get('x-attachment-size'),
    sha256: response.headers.get('x-attachment-sha256'),
    crc32: response.headers.get('x-attachment-crc32'),
  };
  const want = { size: String(bytes.byteLength), sha256: sha256Hex(bytes), crc32: crc32Hex(bytes) };
  if (JSON.stringify(headers) !== JSON.stringify(want)) problems.push(`${what}: headers ${JSON.stringify(headers)}, expected ${JSON.stringify(want)}`);
  return problems;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
