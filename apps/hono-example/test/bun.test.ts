// The example on Bun: the built `dist/bun.js` run by the `bun` executable
// (the `bun` npm package), serving with Bun.serve on bun:sqlite and local
// files. The shared HTTP contract, and tus-js-client through a cut
// connection, run against it from here over real HTTP, with the same SQLite
// file and blob directory opened on Node beside it (the embedded store is
// made for several processes). Without bun the file is
// skipped, except under CI=1, where it fails.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAttachmentStore, inlineSmallBlobs } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { createTempDir, describeExternalHttpContract, expectResumedAfterCut, MIB, spawnBuiltServer, type ServerProcess } from '@attache/testing';
import { describe, expect, it } from 'vitest';

const bunPath = fileURLToPath(new URL('../node_modules/.bin/bun', import.meta.url));
const bunJsPath = fileURLToPath(new URL('../dist/bun.js', import.meta.url));
const haveBun = existsSync(bunPath);

if (!haveBun && process.env['CI']) {
  throw new Error(`${bunPath} is missing: CI runs the example on Bun (pnpm install brings the bun package and its binary)`);
}

/** Starts `bun dist/bun.js` on a fresh data directory. */
async function startOnBun(): Promise<{ server: ServerProcess; dataDir: string; stop(): Promise<{ code: number | null }>; remove(): Promise<void> }> {
  const dataDir = await createTempDir();
  const server = await spawnBuiltServer('hono-example', bunJsPath, { PORT: '0', ATTACHE_DATA_DIR: dataDir.path }, bunPath);
  return {
    server,
    dataDir: dataDir.path,
    async stop() {
      if (server.child.exitCode === null) server.child.kill('SIGTERM');
      return server.exited;
    },
    remove: () => dataDir.remove(),
  };
}

describe.skipIf(!haveBun)('hono-example on Bun', () => {
  it('serves from bun:sqlite in WAL mode and the fs blob store, and exits 0 on SIGTERM after closing the store', async () => {
    const running = await startOnBun();
    try {
      expect(await (await fetch(`${running.server.url}/v1/healthz`)).json()).toEqual({ ok: true });
      const exit = await running.stop();
      expect(exit.code).toBe(0);
      expect(running.server.output.stderr).toContain('SIGTERM received, shutting down');
      // Bun created the embedded store's files where Node's entry does, the database in WAL mode (a setting the file keeps).
      expect(existsSync(join(running.dataDir, 'blobs'))).toBe(true);
      // The SQLite header's write and read versions (bytes 18 and 19) are 2 in WAL mode, 1 in rollback-journal mode.
      expect([...readFileSync(join(running.dataDir, 'attache.db')).subarray(18, 20)]).toEqual([2, 2]);
    } finally {
      await running.stop();
      await running.remove();
    }
  });

  it('resumes a tus-js-client upload after its connection is cut mid-upload: bytes, CRC-32 and SHA-256 right, resumed not restarted', async () => {
    const running = await startOnBun();
    try {
      await expectResumedAfterCut(`${running.server.url}/v1`, { size: 6 * MIB, cutAfterBytes: 3 * MIB });
    } finally {
      await running.stop();
      await running.remove();
    }
  });

  it('passes the MetadataStore port suite on @attache/sql/bun-sqlite (bun test, inside Bun)', async () => {
    const appDir = fileURLToPath(new URL('..', import.meta.url));
    const child = spawn(bunPath, ['test', './test/bun-sqlite-metadata.bun.ts'], { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    // bun test reports on stderr.
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, output).toBe(0);
    expect(output).toMatch(/^ 0 fail$/m);
    expect(Number(/^ (\d+) pass$/m.exec(output)?.[1] ?? 0), output).toBeGreaterThan(0);
  }, 120_000);

  describeExternalHttpContract('hono-example on Bun (Bun.serve, bun:sqlite, fs blobs)', async () => {
    const running = await startOnBun();
    const blobsRoot = join(running.dataDir, 'blobs');
    const metadata = sqliteMetadata({ filename: join(running.dataDir, 'attache.db') });
    // As the app stores them: small blobs in the database (the contract then sees every blob, file or row).
    const blobs = inlineSmallBlobs(fsBlobs({ root: blobsRoot }), metadata, { maxBytes: 64 * 1024, now: Date.now });
    // The server migrated the database before it listened.
    const store = createAttachmentStore({ metadata, blobs, sweepIntervalSeconds: 0 });
    return {
      baseUrl: `${running.server.url}/v1`,
      store,
      blobs,
      stagingDir: join(blobsRoot, '.tmp'),
      async close() {
        const exit = await running.stop();
        await store.close();
        await running.remove();
        expect(exit.code, `bun's stderr: ${running.server.output.stderr}`).toBe(0);
      },
    };
    // Bun.serve drops the Content-Length of a streamed download and sends it
    // chunked (oven-sh/bun#10507, open in 1.4.5); if a Bun release fixes it,
    // the download scenarios fail here and this goes.
  }, { streamedContentLength: false, earlyAnswerDelivered: false, forbiddenMethodsReachMount: false });
});
