// One `attache serve` per embedded data directory, and what a killed one
// leaves behind: the built bin in child processes, real HTTP.
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  acquire,
  assertBuilt,
  download,
  killLeftovers,
  leaseHeaders,
  runCli,
  startServer,
  stopServer,
  withTempDir,
} from './process-helpers.js';

const cleanups: Array<() => Promise<void>> = [];

async function tempDir(): Promise<string> {
  const dir = await withTempDir();
  cleanups.push(dir.remove);
  return dir.path;
}

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  killLeftovers();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function partFiles(dataDir: string): Promise<string[]> {
  const entries = await readdir(join(dataDir, 'blobs', '.tmp')).catch(() => []);
  return entries.filter((entry) => entry.endsWith('.part'));
}

describe('attache serve on an embedded data directory', () => {
  it('refuses a second process on the same data directory with one line naming the PID that holds it', async () => {
    const dataDir = await tempDir();
    const first = await startServer(dataDir);
    const second = runCli(['serve', '--port', '0', '--data-dir', dataDir]);
    expect(await second.exited).toEqual({ code: 1, signal: null });
    const lines = second.output.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`data directory ${dataDir} is in use by another attache process (PID ${first.child.pid})`);
    expect(second.output.stdout).toBe('');
    // The first one is unharmed.
    expect((await fetch(`${first.url}/v1/healthz`)).status).toBe(200);
    expect(await stopServer(first)).toEqual({ code: 0, signal: null });
  });

  it('removes its lock on SIGTERM, so the next process starts', async () => {
    const dataDir = await tempDir();
    const first = await startServer(dataDir);
    expect(existsSync(join(dataDir, 'attache.lock'))).toBe(true);
    expect(await stopServer(first)).toEqual({ code: 0, signal: null });
    expect(existsSync(join(dataDir, 'attache.lock'))).toBe(false);
    const next = await startServer(dataDir);
    expect(await stopServer(next)).toEqual({ code: 0, signal: null });
  });

  it('takes over the lock a SIGKILLed process left behind', async () => {
    const dataDir = await tempDir();
    const killed = await startServer(dataDir);
    killed.child.kill('SIGKILL');
    await killed.exited;
    const stale = JSON.parse(await readFile(join(dataDir, 'attache.lock'), 'utf8')) as { pid: number };
    expect(stale.pid).toBe(killed.child.pid);
    const next = await startServer(dataDir);
    expect((await fetch(`${next.url}/v1/healthz`)).status).toBe(200);
    expect(await stopServer(next)).toEqual({ code: 0, signal: null });
  });

  it('takes over a lock whose PID now belongs to an unrelated process (PID reuse)', async (context) => {
    if (!existsSync(`/proc/${process.pid}/stat`)) return context.skip('needs /proc to tell process start times apart');
    const dataDir = await tempDir();
    // This test runner is alive, but it is not the process that wrote the lock.
    await writeFile(join(dataDir, 'attache.lock'), JSON.stringify({ pid: process.pid, startTime: '1', token: 'earlier' }));
    const next = await startServer(dataDir);
    expect(await stopServer(next)).toEqual({ code: 0, signal: null });
  });

  it('deletes at startup the temp files of uploads a SIGKILLed predecessor never finished', async () => {
    const dataDir = await tempDir();
    const killed = await startServer(dataDir);
    const lease = await acquire(killed.url, 'orders/1');
    const uploads = [1, 2, 3].map((index) => {
      const outgoing = request(new URL(`${killed.url}/v1/attachments?key=orders/1&name=big-${index}.bin`), {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(64 * 1024 * 1024), ...leaseHeaders(lease) },
      });
      outgoing.on('error', () => undefined); // the server dies under it
      outgoing.write(new Uint8Array(256 * 1024).fill(index));
      return outgoing;
    });
    let parts: string[] = [];
    const deadline = Date.now() + 5_000;
    while ((parts = await partFiles(dataDir)).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(parts).toHaveLength(3);
    killed.child.kill('SIGKILL');
    await killed.exited;
    for (const outgoing of uploads) outgoing.destroy();
    expect(await partFiles(dataDir)).toHaveLength(3);

    const next = await startServer(dataDir);
    // Right after the listening line, not after the sweeper's 15-minute grace.
    expect(await partFiles(dataDir)).toEqual([]);
    expect((await download(next.url, 'orders/1', 'big-1.bin')).status).toBe(404);
    expect(await stopServer(next)).toEqual({ code: 0, signal: null });
  });
});
