// A 256 MiB upload through Nest keeps the server's memory flat: the body
// streams from the socket to the blob file, never buffered whole. The server
// runs in its own process from the BUILT packages, so RSS is its own and the
// compiled decorator output (tsc, emitDecoratorMetadata) is what serves.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rssGrowthBound } from '@attache/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const UPLOAD_BYTES = 256 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
// 64 MiB on Node 20; Node 22+ collects a transfer's spent buffers later (see rssGrowthBound).
const RSS_GROWTH_LIMIT = rssGrowthBound(64 * 1024 * 1024);
const MiB = 1024 * 1024;

const SERVER = fileURLToPath(new URL('./fixtures/rss-server.mjs', import.meta.url));
const BUILT = ['nestjs', 'node', 'core', 'fs', 'sql'].map((name) =>
  fileURLToPath(new URL(`../../${name}/dist/index.js`, import.meta.url)),
);

type ServerMessage = { type: 'listening'; port: number } | { type: 'baseline' | 'peak'; rss: number };

let child: ChildProcess;
let dataDir: string;
let baseUrl: string;

function nextMessage<T extends ServerMessage['type']>(type: T): Promise<Extract<ServerMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ServerMessage) => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message as Extract<ServerMessage, { type: T }>);
    };
    const onExit = (code: number | null) => reject(new Error(`the server exited (${code}) before sending ${type}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

beforeAll(async () => {
  const missing = BUILT.filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} missing: build first (pnpm test builds; or pnpm turbo run build --filter=@attache/nestjs...)`);
  }
  dataDir = await mkdtemp(join(tmpdir(), 'attache-nest-rss-'));
  child = fork(SERVER, [dataDir], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await nextMessage('listening');
  baseUrl = `http://127.0.0.1:${port}/v1`;
});

afterAll(async () => {
  if (child?.connected) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.send('stop');
    await exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Deterministic bytes, generated as the request pulls them (the client buffers nothing either). */
function generatedBody(total: number, digest: ReturnType<typeof createHash>): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close();
      const chunk = new Uint8Array(Math.min(CHUNK_BYTES, total - sent));
      const seed = sent / CHUNK_BYTES;
      for (let index = 0; index < chunk.length; index += 4096) chunk[index] = (seed + index) % 251;
      digest.update(chunk);
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

async function acquireLease(key: string): Promise<{ lease_id: string; txn_id: string; fencing_token: number }> {
  const response = await fetch(`${baseUrl}/acquire`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ key, ttl_seconds: 300, owner: 'rss-test' }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { lease_id: string; txn_id: string; fencing_token: number };
}

describe('memory (built packages, SQLite + file-system blobs)', () => {
  it(`keeps server RSS growth under ${RSS_GROWTH_LIMIT / MiB} MiB while a ${UPLOAD_BYTES / MiB} MiB upload streams through Nest`, { timeout: 180_000 }, async () => {
    // Warm up: load every code path of an upload once before measuring.
    const warmLease = await acquireLease('rss/warmup');
    const warm = await fetch(`${baseUrl}/attachments?key=rss/warmup&name=warm.bin`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/octet-stream',
        'X-Lease-ID': warmLease.lease_id,
        'X-Txn-ID': warmLease.txn_id,
        'X-Fencing-Token': String(warmLease.fencing_token),
      },
      body: new Uint8Array(4 * MiB),
    });
    expect(warm.status).toBe(200);

    const lease = await acquireLease('rss/big');
    child.send('baseline');
    const { rss: baseline } = await nextMessage('baseline');

    const digest = createHash('sha256');
    const response = await fetch(`${baseUrl}/attachments?key=rss/big&name=big.bin`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(UPLOAD_BYTES),
        'X-Lease-ID': lease.lease_id,
        'X-Txn-ID': lease.txn_id,
        'X-Fencing-Token': String(lease.fencing_token),
      },
      body: generatedBody(UPLOAD_BYTES, digest),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(200);
    const { attachment } = (await response.json()) as { attachment: { size: number; sha256: string } };
    expect(attachment).toEqual(expect.objectContaining({ size: UPLOAD_BYTES, sha256: digest.digest('hex') }));

    child.send('peak');
    const { rss: peak } = await nextMessage('peak');
    const growth = peak - baseline;
    console.info(
      `nestjs: ${UPLOAD_BYTES / MiB} MiB upload, server RSS baseline ${(baseline / MiB).toFixed(1)} MiB, ` +
        `peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`,
    );
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
  });
});
