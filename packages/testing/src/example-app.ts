// The example apps' shared specification: the README's curl session over
// real HTTP (lease lifecycle, /avatar, its mistakes) against the app started
// in-process, and the built `dist/main.js` as a child process. POST /avatar
// answers each mistake exactly as every in-app upload does
// (contract/in-app-uploads.ts holds the literal answers).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  abortFormMidFile,
  eventually,
  inAppMistakeAnswers,
  IN_APP_MISTAKES,
  mistakeAnswerOf,
  sendInAppMistake,
} from './contract/in-app-uploads.js';

export async function createTempDir(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'attache-example-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface Lease {
  key: string;
  leaseId: string;
  txnId: string;
  fencingToken: string;
}

export async function acquire(apiUrl: string, key: string): Promise<Lease> {
  const response = await fetch(`${apiUrl}/acquire`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, ttl_seconds: 30, owner: 'example-test' }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { lease_id: string; txn_id: string; fencing_token: number };
  return { key, leaseId: body.lease_id, txnId: body.txn_id, fencingToken: String(body.fencing_token) };
}

export function leaseHeaders(lease: Lease): Record<string, string> {
  return { 'x-lease-id': lease.leaseId, 'x-txn-id': lease.txnId, 'x-fencing-token': lease.fencingToken };
}

/** Raw-body upload into the lease's transaction (staged until release). */
export function uploadRaw(apiUrl: string, lease: Lease, name: string, bytes: Uint8Array<ArrayBuffer>): Promise<Response> {
  return fetch(`${apiUrl}/attachments?key=${encodeURIComponent(lease.key)}&name=${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...leaseHeaders(lease) },
    body: bytes,
  });
}

export function release(apiUrl: string, lease: Lease): Promise<Response> {
  return fetch(`${apiUrl}/release`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fencing-token': lease.fencingToken },
    body: JSON.stringify({ key: lease.key, lease_id: lease.leaseId, txn_id: lease.txnId }),
  });
}

/** What everyone sees (committed state only). */
export function downloadPublic(apiUrl: string, key: string, name: string): Promise<Response> {
  return fetch(`${apiUrl}/attachment?key=${encodeURIComponent(key)}&name=${encodeURIComponent(name)}&public=true`);
}

export function downloadById(apiUrl: string, id: string): Promise<Response> {
  return fetch(`${apiUrl}/attachment?id=${encodeURIComponent(id)}`);
}

/** POST /avatar with a multipart form holding `bytes` in field `file`. */
export function uploadAvatar(appUrl: string, bytes: Uint8Array<ArrayBuffer>, filename = 'me.png'): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type: 'image/png' }), filename);
  return fetch(`${appUrl}/avatar`, { method: 'POST', body: form });
}

/**
 * The response body equals `expected`, byte for byte. (A Buffer comparison:
 * vitest's deep equality walks typed arrays element by element, seconds for 256 KiB.)
 */
export async function expectBodyBytes(response: Response, expected: Uint8Array): Promise<void> {
  const actual = Buffer.from(await response.arrayBuffer());
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected), 'the downloaded bytes differ from the uploaded ones').toBe(true);
}

// The built server (`node dist/main.js`) as a child process.

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns the built `mainPath` with `env` on top of ours minus PORT/ATTACHE_*, and waits for `<name> listening on <url>`.
 * `runtime` runs it (default this Node; e.g. a `bun` executable).
 */
export async function spawnBuiltServer(
  name: string,
  mainPath: string,
  env: Record<string, string>,
  runtime: string = process.execPath,
): Promise<ServerProcess> {
  if (!existsSync(mainPath)) {
    throw new Error(`${mainPath} is missing: build first (pnpm test builds; or pnpm turbo run build --filter=./apps/*...)`);
  }
  const listeningLine = new RegExp(`^${name} listening on (http://127\\.0\\.0\\.1:\\d+)$`, 'm');
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name !== 'PORT' && !name.startsWith('ATTACHE_')),
  );
  const child = spawn(runtime, [mainPath], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output.stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (output.stderr += text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 15 s; stderr: ${output.stderr}`)), 15_000);
    const onData = (): void => {
      const match = listeningLine.exec(output.stdout);
      if (match?.[1] === undefined) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve(match[1]);
    };
    child.stdout.on('data', onData);
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${JSON.stringify(exit)}) before listening; stderr: ${output.stderr}`));
    });
  });
  return { child, url, output, exited };
}

export interface RunningExampleApp {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  close(): Promise<void>;
}

/** The files under `dir`, recursively, relative to it (sorted). */
export async function filesUnder(dir: string): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries
        .filter((entry) => entry.isFile())
        .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
        .sort();
    } catch (error) {
      // A directory the blob store prunes (emptied by a delete) while the walk runs: walk again.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw error;
    }
  }
}

/**
 * Every blob an example app keeps in `dataDir`: the files under `blobs/` and
 * the small blobs held as rows of `attache.db` (the apps keep blobs up to
 * 64 KiB there), read straight from the database file.
 */
export async function blobsKept(dataDir: string): Promise<string[]> {
  const files = (await filesUnder(join(dataDir, 'blobs'))).map((file) => `blobs/${file}`);
  const databaseFile = join(dataDir, 'attache.db');
  if (!existsSync(databaseFile)) return files;
  // Loaded here, not at the top: this module also loads where no native driver does (Bun).
  const { default: Database } = await import('better-sqlite3');
  const database = new Database(databaseFile, { readonly: true, fileMustExist: true });
  try {
    // The apps migrate before they listen, so the table is there.
    const rows = database.prepare('select path from attache_blob_data order by path').all() as { path: string }[];
    return [...files, ...rows.map((row) => `attache.db:${row.path}`)];
  } finally {
    database.close();
  }
}

export interface ExampleAppSpec {
  /** e.g. `express-example`: the name in its listening line. */
  name: string;
  /** Starts the app in-process on port 0 with its data in `dataDir`. */
  start(dataDir: string): Promise<RunningExampleApp>;
  /** Absolute path of the built entry (`dist/main.js`). */
  mainPath: string;
  /** The size limit of its POST /avatar. */
  avatarMaxBytes: number;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The behaviour every example app shares; each app adds its own tests beside it. */
export function describeExampleApp(spec: ExampleAppSpec): { startInProcess(): Promise<RunningExampleApp & { dataDir: string }> } {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function startInProcess(): Promise<RunningExampleApp & { dataDir: string }> {
    const dataDir = await createTempDir();
    cleanups.push(dataDir.remove);
    const running = await spec.start(dataDir.path);
    cleanups.push(() => running.close());
    return { url: running.url, close: () => running.close(), dataDir: dataDir.path };
  }

  describe(`${spec.name}, in process`, () => {
    it('runs a lease lifecycle under /v1: acquire, raw upload, release, public download', async () => {
      const { url } = await startInProcess();
      const api = `${url}/v1`;
      const bytes = new Uint8Array(randomBytes(256 * 1024));

      const lease = await acquire(api, 'orders/1');
      const uploaded = await uploadRaw(api, lease, 'scan.bin', bytes);
      expect(uploaded.status).toBe(200);
      expect(((await uploaded.json()) as { attachment: { size: number } }).attachment.size).toBe(bytes.length);

      // Staged: nobody else sees it before the release commits it.
      expect((await downloadPublic(api, 'orders/1', 'scan.bin')).status).toBe(404);
      const released = await release(api, lease);
      expect(released.status).toBe(200);
      expect(await released.json()).toEqual({ released: true });

      const download = await downloadPublic(api, 'orders/1', 'scan.bin');
      expect(download.status).toBe(200);
      await expectBodyBytes(download, bytes);
    });

    it('stores POST /avatar as a document that /v1/attachment?id= serves', async () => {
      const { url } = await startInProcess();
      const bytes = new Uint8Array(randomBytes(100_000));

      const response = await uploadAvatar(url, bytes);
      expect(response.status).toBe(201);
      const avatar = (await response.json()) as { id: string; ref: string; size: number; sha256: string };
      expect(avatar).toEqual({ id: expect.any(String), ref: `attachment://${avatar.id}`, size: bytes.length, sha256: sha256(bytes) });

      const download = await downloadById(`${url}/v1`, avatar.id);
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe('image/png');
      await expectBodyBytes(download, bytes);
    });

    it('answers every /avatar mistake as core words it, keeping no blob: over limit, wrong field, no form, second file, no file', async () => {
      const { url, dataDir } = await startInProcess();
      const expected = inAppMistakeAnswers(spec.avatarMaxBytes);
      for (const mistake of IN_APP_MISTAKES) {
        const answer = await mistakeAnswerOf(await sendInAppMistake(`${url}/avatar`, mistake, spec.avatarMaxBytes));
        expect({ mistake, ...answer }).toEqual({ mistake, ...expected[mistake] });
      }
      await eventually(() => blobsKept(dataDir), []);
    });

    it('keeps no blob of an avatar whose client disconnects mid-file', async () => {
      const { url, dataDir } = await startInProcess();
      await abortFormMidFile(`${url}/avatar`, 1024 * 1024);
      await eventually(() => blobsKept(dataDir), []);
      // The app still serves after the abort; a small avatar is a row of the database, which blobsKept sees.
      expect((await uploadAvatar(url, new Uint8Array(10))).status).toBe(201);
      expect(await blobsKept(dataDir)).toEqual([expect.stringMatching(/^attache\.db:state\//)]);
    });
  });

  describe(`${spec.name}, built (node dist/main.js)`, () => {
    it('listens on PORT=0, serves /v1/healthz, and exits 0 on SIGTERM', async () => {
      const dataDir = await createTempDir();
      cleanups.push(dataDir.remove);
      let server: ServerProcess | undefined;
      cleanups.push(async () => {
        if (server?.child.exitCode === null) server.child.kill('SIGKILL');
      });
      server = await spawnBuiltServer(spec.name, spec.mainPath, { PORT: '0', ATTACHE_DATA_DIR: dataDir.path });

      const health = await fetch(`${server.url}/v1/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ ok: true });
      expect(existsSync(join(dataDir.path, 'attache.db'))).toBe(true);

      server.child.kill('SIGTERM');
      expect(await server.exited).toEqual({ code: 0, signal: null });
    });
  });

  return { startInProcess };
}
