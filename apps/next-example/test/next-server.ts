// The built app as a process: `next build` (skipped while the last build is
// newer than everything it is built from), then `next start` on a free port
// of 127.0.0.1 with its own data dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP_DIR = fileURLToPath(new URL('..', import.meta.url));
const REPOSITORY_ROOT = join(APP_DIR, '..', '..');
const NEXT_BIN = join(APP_DIR, 'node_modules', 'next', 'dist', 'bin', 'next');
const BUILD_ID = join(APP_DIR, '.next', 'BUILD_ID');

// What the client bundle and the server load: the app's own files, and the
// built packages (the server imports their dist/ at run time, the browser
// bundle compiles @attache/client's and core's).
const BUILD_INPUTS = [
  'app',
  'lib',
  'public',
  'next.config.ts',
  'package.json',
  'tsconfig.json',
  ...['client', 'core', 'fs', 'sql'].map((name) => join(REPOSITORY_ROOT, 'packages', name, 'dist')),
];

const NEXT_ENV = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };

/** How long the build took in this process, or `undefined` when the last one was reused. */
export interface BuildResult {
  builtInMs: number | undefined;
}

export function buildOnce(): BuildResult {
  if (isBuildFresh()) return { builtInMs: undefined };
  const started = performance.now();
  const build = spawnSync(process.execPath, [NEXT_BIN, 'build'], { cwd: APP_DIR, env: NEXT_ENV, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`next build failed (status ${build.status}):\n${build.stdout}\n${build.stderr}`);
  return { builtInMs: Math.round(performance.now() - started) };
}

function isBuildFresh(): boolean {
  if (!existsSync(BUILD_ID)) return false;
  const builtAt = statSync(BUILD_ID).mtimeMs;
  return BUILD_INPUTS.every((input) => newestChange(resolve(APP_DIR, input)) < builtAt);
}

function newestChange(path: string): number {
  if (!existsSync(path)) return Infinity; // a dist/ that is missing cannot have been built from
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  let newest = stats.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestChange(join(path, entry)));
  return newest;
}

export interface RunningNext {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  dataDir: string;
  /** Everything the server printed, for failure messages. */
  output(): string;
  /** SIGTERM, then waits for the exit; removes the data dir. */
  stop(): Promise<void>;
}

export async function startNext(env: Record<string, string>): Promise<RunningNext> {
  const dataDir = mkdtempSync(join(tmpdir(), 'attache-next-example-'));
  const port = await freePort();
  const child = spawn(process.execPath, [NEXT_BIN, 'start', '--hostname', '127.0.0.1', '--port', String(port)], {
    cwd: APP_DIR,
    env: { ...NEXT_ENV, ATTACHE_DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitUntilHealthy(url, child, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, dataDir, output: () => output, stop };
}

async function waitUntilHealthy(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`next start exited with status ${child.exitCode}:\n${output()}`);
    try {
      const response = await fetch(`${url}/v1/healthz`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`next start did not answer /v1/healthz within 30 s:\n${output()}`);
}

/** A port nobody listens on right now (the OS picks it; we release it for next to bind). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
