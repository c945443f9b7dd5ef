// `attache serve` that cannot start says why and what to do, in one stderr
// line, and exits non-zero without listening. The built bin in a child
// process, as an operator runs it.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createTestDatabase, describePostgres } from '@attache/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, killLeftovers, runCli, startServer, stopServer, withTempDir, type CliRun } from './process-helpers.js';
import { mountTmpfs, type Tmpfs } from './tmpfs.js';

const cleanups: Array<() => Promise<void>> = [];

async function tempDir(): Promise<string> {
  const dir = await withTempDir();
  cleanups.push(dir.remove);
  return dir.path;
}

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** The process's whole stderr, which must be exactly one line. */
function onlyStderrLine(run: CliRun): string {
  const lines = run.output.stderr.split('\n').filter((line) => line !== '');
  expect(lines, `stderr: ${run.output.stderr}`).toHaveLength(1);
  expect(run.output.stdout).toBe('');
  return lines[0] ?? '';
}

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  killLeftovers();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('attache serve that cannot start', () => {
  it('exits 1 with one line naming the file in the way when the data directory is a file', async () => {
    const dataDir = join(await tempDir(), 'data');
    await writeFile(dataDir, 'not a directory');
    const run = runCli(['serve', '--port', '0', '--data-dir', dataDir]);
    expect(await run.exited).toEqual({ code: 1, signal: null });
    const line = onlyStderrLine(run);
    expect(line).toContain(`data directory ${dataDir} is not a directory`);
    expect(line).toContain('--data-dir (or ATTACHE_DATA_DIR)');
  });

  describe('on a read-only file system', () => {
    let readOnly: Tmpfs | { skipReason: string };
    beforeAll(async () => {
      readOnly = await mountTmpfs({ sizeBytes: 1024 * 1024, readOnly: true });
    });
    afterAll(async () => {
      if ('path' in readOnly) await readOnly.unmount();
    });

    it('exits 1 with one line saying the data directory is not writable', async (context) => {
      if (!('path' in readOnly)) return context.skip(readOnly.skipReason);
      const run = runCli(['serve', '--port', '0', '--data-dir', readOnly.path]);
      expect(await run.exited).toEqual({ code: 1, signal: null });
      const line = onlyStderrLine(run);
      expect(line).toContain(`data directory ${readOnly.path} is not writable (EROFS)`);
      expect(line).toContain('--data-dir (or ATTACHE_DATA_DIR)');
    });
  });

  it('exits 1 with one line that suggests --port and PORT when the port is taken', async () => {
    const server = await startServer(await tempDir());
    const port = new URL(server.url).port;
    const clash = runCli(['serve', '--port', port, '--data-dir', await tempDir()]);
    expect(await clash.exited).toEqual({ code: 1, signal: null });
    const line = onlyStderrLine(clash);
    expect(line).toContain(`port ${port} on 127.0.0.1 is already in use (EADDRINUSE)`);
    expect(line).toContain('--port N or PORT=N');
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
  });

  it('exits 2 with one line for a postgres:// URL without a host', async () => {
    const run = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], { ATTACHE_DATABASE_URL: 'postgres:///attache' });
    expect(await run.exited).toEqual({ code: 2, signal: null });
    expect(onlyStderrLine(run)).toContain('ATTACHE_DATABASE_URL has no host');
  });

  it('exits 1 with one line naming ECONNREFUSED, and never the password, when nothing listens at the PostgreSQL URL', async () => {
    const port = await closedPort();
    const run = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], {
      ATTACHE_DATABASE_URL: `postgres://attache:hunter2@127.0.0.1:${port}/attache`,
    });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    const line = onlyStderrLine(run);
    expect(line).toContain(`metadata in PostgreSQL 127.0.0.1:${port}/attache`);
    expect(line).toContain('ECONNREFUSED');
    expect(line).toContain('start PostgreSQL, or fix the host and port in ATTACHE_DATABASE_URL');
    expect(line).not.toContain('hunter2');
  });

  it("starts the deployment guide's PostgreSQL URL without node-postgres' sslmode security warning", async () => {
    const guide = readFileSync(new URL('../../../docs/deployment.md', import.meta.url), 'utf8');
    const example = /ATTACHE_DATABASE_URL='(postgres[^']+)'/.exec(guide)?.[1];
    expect(example).toBeDefined();
    const url = new URL(example ?? '');
    url.host = `127.0.0.1:${await closedPort()}`;
    const run = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], { ATTACHE_DATABASE_URL: url.toString() });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    const line = onlyStderrLine(run);
    expect(line).toContain('ECONNREFUSED');
    expect(line).not.toContain(url.password);
  });
});

describePostgres('attache serve that cannot use its PostgreSQL database', (serverUrl) => {
  it('exits 1 with one line saying the database does not exist and how to create it', async () => {
    const url = new URL(serverUrl);
    url.pathname = '/attache_missing_database';
    const run = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], { ATTACHE_DATABASE_URL: url.toString() });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    const line = onlyStderrLine(run);
    expect(line).toContain('database "attache_missing_database" does not exist (3D000)');
    expect(line).toContain('create the database (createdb)');
  });

  it('exits 1 with one line naming the authentication failure and never the password', async () => {
    const database = await createTestDatabase(serverUrl);
    cleanups.push(database.drop);
    const url = new URL(database.url);
    url.username = 'attache_no_such_role';
    url.password = 'hunter2';
    const run = runCli(['serve', '--port', '0', '--data-dir', await tempDir()], { ATTACHE_DATABASE_URL: url.toString() });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    const line = onlyStderrLine(run);
    expect(line).toContain('role "attache_no_such_role" does not exist (28000)');
    expect(line).toContain('fix the user or password in ATTACHE_DATABASE_URL');
    expect(line).not.toContain('hunter2');
  });
});
