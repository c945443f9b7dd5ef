// Memory stays bounded whatever the attachment size: a 256 MiB upload and a
// 256 MiB download through Express (SQLite + file blobs) grow the server's
// RSS by less than 64 MiB. The server runs in a child process over the built
// packages, so the client's own memory is not counted.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rssGrowthBound } from '@attache/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
// 64 MiB on Node 20; Node 22+ collects a transfer's spent buffers later (see rssGrowthBound).
const LIMIT = rssGrowthBound(64 * MiB);
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

let child: ChildProcess;
let base: string;
let measureId = 0;

/** Current RSS and the peak since the last reset, from the server process. */
function measure(reset: boolean): Promise<{ rss: number; peak: number }> {
  const id = ++measureId;
  return new Promise((resolve) => {
    const onMessage = (message: { type?: string; id?: number; rss: number; peak: number }) => {
      if (message.type !== 'rss' || message.id !== id) return;
      child.off('message', onMessage);
      resolve({ rss: message.rss, peak: message.peak });
    };
    child.on('message', onMessage);
    child.send({ type: 'measure', id, reset });
  });
}

function body(size: number): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(MiB).fill(42);
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= size) {
        controller.close();
        return;
      }
      sent += chunk.byteLength;
      controller.enqueue(chunk.slice());
    },
  });
}

beforeAll(async () => {
  // The fixture imports the built packages; turbo rebuilds only what changed.
  execFileSync('pnpm', ['turbo', 'run', 'build', '--filter=@attache/express...', '--output-logs=errors-only'], { cwd: repoRoot, stdio: 'inherit' });
  child = fork(fileURLToPath(new URL('./fixtures/server.mjs', import.meta.url)), [], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    child.on('message', (message: { type?: string; port?: number }) => {
      if (message.type === 'listening' && message.port) resolve(message.port);
    });
  });
  base = `http://127.0.0.1:${port}/v1`;
}, 300_000);

afterAll(async () => {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send({ type: 'stop' });
  await exited;
});

describe('memory through Express (SQLite + file blobs)', () => {
  let lease: { lease_id: string; txn_id: string; fencing_token: number };

  it(`takes a 256 MiB upload with RSS growth under ${LIMIT / MiB} MiB`, async () => {
    const acquired = await fetch(`${base}/acquire`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'big/one', owner: 'memory-test', ttl_seconds: 600 }),
    });
    lease = (await acquired.json()) as typeof lease;
    const { rss: before } = await measure(true);
    const response = await fetch(`${base}/attachments?key=big/one&name=big.bin`, {
      method: 'POST',
      headers: { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id, 'X-Fencing-Token': String(lease.fencing_token) },
      body: body(SIZE),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ attachment: { size: SIZE } });
    const { peak } = await measure(true);
    console.info(`express upload of 256 MiB: server RSS ${(before / MiB).toFixed(1)} MiB → peak ${(peak / MiB).toFixed(1)} MiB (growth ${((peak - before) / MiB).toFixed(1)} MiB)`);
    expect(peak - before).toBeLessThan(LIMIT);
    const released = await fetch(`${base}/release`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Fencing-Token': String(lease.fencing_token) },
      body: JSON.stringify({ key: 'big/one', lease_id: lease.lease_id, txn_id: lease.txn_id }),
    });
    expect(released.status).toBe(200);
  }, 120_000);

  it(`serves a 256 MiB download with RSS growth under ${LIMIT / MiB} MiB`, async () => {
    const { rss: before } = await measure(true);
    const response = await fetch(`${base}/attachment?key=big/one&name=big.bin`);
    expect(response.status).toBe(200);
    let received = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) received += chunk.byteLength;
    expect(received).toBe(SIZE);
    const { peak } = await measure(true);
    console.info(`express download of 256 MiB: server RSS ${(before / MiB).toFixed(1)} MiB → peak ${(peak / MiB).toFixed(1)} MiB (growth ${((peak - before) / MiB).toFixed(1)} MiB)`);
    expect(peak - before).toBeLessThan(LIMIT);
  }, 120_000);
});
