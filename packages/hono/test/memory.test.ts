// Memory stays bounded whatever the upload size: a 256 MiB upload through
// Hono on Node (built packages, SQLite + file-system blobs, server in a
// child process) must not grow the server's RSS by 64 MiB or more.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rssGrowthBound } from '@attache/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternStream, postStreaming, sha256Hex } from './serve-hono.js';

const MiB = 1024 * 1024;
const UPLOAD_BYTES = 256 * MiB;
// 64 MiB on Node 20; Node 22+ collects a transfer's spent buffers later (see rssGrowthBound).
const RSS_GROWTH_LIMIT = rssGrowthBound(64 * MiB);

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const fixture = join(packageRoot, 'test', 'fixtures', 'rss-server.mjs');

interface RssSample {
  rss: number;
  peak: number;
}

let child: ChildProcess | undefined;
let origin = '';
let dataDir = '';

/** The fixture imports dist/; measuring a stale build would measure other code. */
function assertBuildIsCurrent(): void {
  const built = join(packageRoot, 'dist', 'index.js');
  if (!existsSync(built)) throw new Error('packages/hono/dist is missing: run `pnpm turbo run build --filter=@attache/hono...` first');
  const builtAt = statSync(built).mtimeMs;
  for (const file of readdirSync(join(packageRoot, 'src'))) {
    if (statSync(join(packageRoot, 'src', file)).mtimeMs > builtAt) {
      throw new Error(`packages/hono/src/${file} is newer than dist/: rebuild before measuring`);
    }
  }
}

async function rss(path: '/__rss' | '/__rss/reset'): Promise<RssSample> {
  const response = await fetch(`${origin}${path}`, { method: path === '/__rss' ? 'GET' : 'POST' });
  return (await response.json()) as RssSample;
}

beforeAll(async () => {
  assertBuildIsCurrent();
  dataDir = await mkdtemp(join(tmpdir(), 'attache-hono-rss-'));
  const started = fork(fixture, [dataDir], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child = started;
  const port = await new Promise<number>((resolve, reject) => {
    started.once('message', (message) => resolve((message as { port: number }).port));
    started.once('exit', (code) => reject(new Error(`the fixture server exited early (code ${code})`)));
  });
  origin = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  if (child?.connected) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.disconnect();
    await exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('memory through Hono on Node', () => {
  it(`keeps RSS growth under ${RSS_GROWTH_LIMIT / MiB} MiB for a ${UPLOAD_BYTES / MiB} MiB streamed upload and its download`, async () => {
    // Warm up: first requests load modules, compile hot paths and open SQLite.
    const warmup = await postStreaming(`${origin}/v1/attachments?name=warmup.bin`, patternStream(4 * MiB));
    expect(warmup.status).toBe(200);
    await warmup.body?.cancel();

    const expected = await sha256Hex(patternStream(UPLOAD_BYTES));
    const baseline = await rss('/__rss/reset');
    const uploaded = await postStreaming(`${origin}/v1/attachments?name=large.bin`, patternStream(UPLOAD_BYTES));
    expect(uploaded.status).toBe(200);
    const { attachment } = (await uploaded.json()) as { attachment: { id: string; size: number; sha256: string } };
    expect(attachment).toMatchObject({ size: UPLOAD_BYTES, sha256: expected.sha256 });
    const afterUpload = await rss('/__rss');
    const uploadGrowth = afterUpload.peak - baseline.rss;

    const downloadBaseline = await rss('/__rss/reset');
    const downloaded = await fetch(`${origin}/v1/attachment?id=${attachment.id}`);
    expect(await sha256Hex(downloaded.body!)).toEqual(expected);
    const afterDownload = await rss('/__rss');
    const downloadGrowth = afterDownload.peak - downloadBaseline.rss;

    console.info(
      `[hono rss] baseline ${(baseline.rss / MiB).toFixed(1)} MiB; ` +
        `upload of ${UPLOAD_BYTES / MiB} MiB: peak +${(uploadGrowth / MiB).toFixed(1)} MiB; ` +
        `download: peak +${(downloadGrowth / MiB).toFixed(1)} MiB`,
    );
    expect(uploadGrowth).toBeLessThan(RSS_GROWTH_LIMIT);
    expect(downloadGrowth).toBeLessThan(RSS_GROWTH_LIMIT);
  }, 120_000);
});
