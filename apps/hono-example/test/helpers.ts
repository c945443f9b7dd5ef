// HTTP calls of the README's curl session, a temporary data directory, and
// the built server as a child process. Not a test file itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

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

export const MAIN_PATH = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const LISTENING_LINE = /^hono-example listening on (http:\/\/127\.0\.0\.1:\d+)$/m;

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function assertBuilt(): void {
  if (!existsSync(MAIN_PATH)) {
    throw new Error(`${MAIN_PATH} is missing: build first (pnpm test builds; or pnpm turbo run build --filter=./apps/*...)`);
  }
}

/** Spawns `node dist/main.js` with `env` on top of ours minus PORT/ATTACHE_*, and waits for its listening line. */
export async function spawnBuiltServer(env: Record<string, string>): Promise<ServerProcess> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name !== 'PORT' && !name.startsWith('ATTACHE_')),
  );
  const child = spawn(process.execPath, [MAIN_PATH], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output.stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (output.stderr += text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 15 s; stderr: ${output.stderr}`)), 15_000);
    const onData = (): void => {
      const match = LISTENING_LINE.exec(output.stdout);
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
