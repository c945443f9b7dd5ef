// Runs the BUILT `attache` bin as a child process, as users and CI do, and
// speaks real HTTP to it on 127.0.0.1. Not a test file itself.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN_PATH = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

const LISTENING_LINE = /^attache listening on (http:\/\/\S+)$/m;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliRun {
  child: ChildProcess;
  /** Everything written so far (grows while the process runs). */
  output: { stdout: string; stderr: string };
  exited: Promise<Exit>;
}

export interface RunningCli extends CliRun {
  url: string;
}

const children = new Set<ChildProcess>();

export function assertBuilt(): void {
  if (!existsSync(BIN_PATH)) {
    throw new Error(`${BIN_PATH} is missing: build first (pnpm test builds; or pnpm turbo run build --filter=@attache/cli...)`);
  }
}

/** Environment of the child: ours minus anything that would configure attache. */
function childEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name !== 'PORT' && !name.startsWith('ATTACHE_')) env[name] = value;
  }
  return { ...env, ...overrides };
}

export function runCli(args: string[], env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, [BIN_PATH, ...args], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (output.stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (output.stderr += text));
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, output, exited };
}

/** Starts `attache serve --port 0` and resolves once it printed its URL. */
export async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<RunningCli> {
  const run = runCli(['serve', '--port', '0'], { ATTACHE_DATA_DIR: dataDir, ...env });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 15 s; stderr: ${run.output.stderr}`)), 15_000);
    const onData = (): void => {
      const match = LISTENING_LINE.exec(run.output.stdout);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        run.child.stdout?.off('data', onData);
        resolve(match[1]);
      }
    };
    run.child.stdout?.on('data', onData);
    void run.exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`attache exited (${JSON.stringify(exit)}) before listening; stderr: ${run.output.stderr}`));
    });
  });
  return { ...run, url };
}

export async function stopServer(server: CliRun): Promise<Exit> {
  server.child.kill('SIGTERM');
  return server.exited;
}

/**
 * The child's peak resident memory in bytes (VmHWM of /proc/<pid>/status,
 * which only grows), read until it exits: the last reading is the peak.
 */
export async function peakRss(run: CliRun): Promise<{ exit: Exit; peakBytes: number }> {
  let peakKiB = 0;
  let exited = false;
  void run.exited.then(() => (exited = true));
  while (!exited) {
    try {
      const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${run.child.pid}/status`, 'utf8'));
      if (match) peakKiB = Math.max(peakKiB, Number(match[1]));
    } catch {
      // Gone between the check and the read.
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { exit: await run.exited, peakBytes: peakKiB * 1024 };
}

/** Kills whatever a failed test left running. */
export function killLeftovers(): void {
  for (const child of children) child.kill('SIGKILL');
}

export async function withTempDir(): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'attache-cli-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      if (condition()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

// HTTP API (API.md §2), just enough for the lifecycle.

export interface LeaseHeaders {
  key: string;
  leaseId: string;
  txnId: string;
  fencingToken: string;
}

export interface AcquireRequest {
  headers?: Record<string, string>;
  /** Default 30. */
  ttlSeconds?: number;
  /** Default -1 (fail at once when held). */
  blockSeconds?: number;
  owner?: string;
}

export async function acquire(url: string, key: string, init: AcquireRequest = {}): Promise<LeaseHeaders> {
  const response = await fetch(`${url}/v1/acquire`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: JSON.stringify({
      key,
      ttl_seconds: init.ttlSeconds ?? 30,
      owner: init.owner ?? 't',
      ...(init.blockSeconds === undefined ? {} : { block_seconds: init.blockSeconds }),
    }),
  });
  const body = (await response.json()) as { lease_id: string; txn_id: string; fencing_token: number };
  if (response.status !== 200) throw new Error(`acquire: ${response.status} ${JSON.stringify(body)}`);
  return { key, leaseId: body.lease_id, txnId: body.txn_id, fencingToken: String(body.fencing_token) };
}

export function leaseHeaders(lease: LeaseHeaders): Record<string, string> {
  return { 'x-lease-id': lease.leaseId, 'x-txn-id': lease.txnId, 'x-fencing-token': lease.fencingToken };
}

export async function upload(url: string, lease: LeaseHeaders, name: string, bytes: Uint8Array<ArrayBuffer>): Promise<Response> {
  return fetch(`${url}/v1/attachments?key=${encodeURIComponent(lease.key)}&name=${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', ...leaseHeaders(lease) },
    body: bytes,
  });
}

/**
 * The same upload as a multipart form of one file: the server cannot tell it
 * is the only part until the form ends, so it stages the blob and promotes it
 * after the commit (a raw upload goes straight to its committed path).
 */
export async function uploadStaged(url: string, lease: LeaseHeaders, name: string, bytes: Uint8Array<ArrayBuffer>): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), name);
  return fetch(`${url}/v1/attachments?key=${encodeURIComponent(lease.key)}`, { method: 'POST', headers: leaseHeaders(lease), body: form });
}

export async function release(url: string, lease: LeaseHeaders): Promise<Response> {
  return fetch(`${url}/v1/release`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fencing-token': lease.fencingToken },
    body: JSON.stringify({ key: lease.key, lease_id: lease.leaseId, txn_id: lease.txnId }),
  });
}

export async function download(url: string, key: string, name: string): Promise<Response> {
  return fetch(`${url}/v1/attachment?key=${encodeURIComponent(key)}&name=${encodeURIComponent(name)}&public=true`);
}
