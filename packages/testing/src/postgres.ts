// A throwaway PostgreSQL server for tests, and one fresh database per test.
//
// One cluster serves a whole test run: `postgres-global-setup.ts` starts it
// (or takes `$ATTACHE_TEST_DATABASE_URL`) and provides its URL; test files
// call `describePostgres`, which skips when no server could be had, except
// under CI (`$CI` set), where a missing PostgreSQL fails loudly instead.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { describe, inject, it } from 'vitest';
import { freePort } from './free-port.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the test PostgreSQL server (its `postgres` database), or null when there is none. */
    postgresUrl: string | null;
    /** Why there is no server, when `postgresUrl` is null. */
    postgresMissingReason: string;
  }
}

const run = promisify(execFile);

export interface RunningPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  url: string;
  /** Stops the server and deletes its files. */
  stop(): Promise<void>;
}

/** The newest `/usr/lib/postgresql/<version>/bin` that has the server binaries (Debian's layout), if any. */
export function findPostgresBinaries(root = '/usr/lib/postgresql'): string | undefined {
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((entry) => /^\d+(\.\d+)?$/.test(entry))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

/**
 * Creates and starts a cluster in a new directory under the OS temp dir,
 * listening on 127.0.0.1 at a free port. initdb refuses to run as root, so
 * when we are root the server binaries run as the `postgres` OS user.
 */
export async function startPostgres(
  bin = findPostgresBinaries(),
  options: {
    /** Keep PostgreSQL's fsync and synchronous commit (benchmarks); tests turn them off for speed. */
    durable?: boolean;
  } = {},
): Promise<RunningPostgres> {
  if (bin === undefined) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin');
  const asRoot = process.getuid?.() === 0;
  const directory = mkdtempSync(join(tmpdir(), 'attache-pg-'));
  const dataDir = join(directory, 'data');
  const logFile = join(directory, 'server.log');
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: group } = await run('id', ['-g', 'postgres']);
    chownSync(directory, Number(stdout.trim()), Number(group.trim()));
  }
  const server = (program: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, program), ...args]) : run(join(bin, program), args);

  try {
    // An ICU (not C) default collation, so tests notice a query that forgets
    // `collate "C"` where code point order matters. `--no-sync`: a test
    // cluster need not survive a power cut.
    await server('initdb', [
      '-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '--encoding=UTF8',
      '--locale=C.UTF-8', '--locale-provider=icu', '--icu-locale=en-US',
    ]);
    const port = await freePort();
    const settings = [
      'listen_addresses=127.0.0.1', `port=${port}`, `unix_socket_directories=${directory}`, 'max_connections=300',
      ...(options.durable ? [] : ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off']),
    ];
    await server('pg_ctl', [
      '-D', dataDir, '-l', logFile, '-w', '-t', '60',
      '-o', settings.map((setting) => `-c ${setting}`).join(' '),
      'start',
    ]);
    const watchdog = stopWhenGone(process.pid, asRoot, bin, dataDir, directory);
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      async stop() {
        watchdog.kill();
        try {
          await server('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
        } finally {
          rmSync(directory, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
}

/**
 * pg_ctl detaches the server from us, so a test run that is killed (no
 * teardown) would leave it running. A detached shell polls for the test
 * process and, once it is gone, stops the server and deletes its files.
 */
function stopWhenGone(pid: number, asRoot: boolean, bin: string, dataDir: string, directory: string): ChildProcess {
  const pgCtl = `${asRoot ? 'runuser -u postgres -- ' : ''}"$2/pg_ctl"`;
  const script = `while kill -0 "$1" 2>/dev/null; do sleep 1; done; ${pgCtl} -D "$3" -m immediate stop; rm -rf "$4"`;
  const child = spawn('sh', ['-c', script, 'attache-pg-watchdog', String(pid), bin, dataDir, directory], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

export interface TestDatabase {
  /** URL of the new, empty database. */
  url: string;
  /** Drops it, closing any connection still open to it. */
  drop(): Promise<void>;
}

/** Creates an empty database `t_<random>` on the server of `serverUrl`. */
export async function createTestDatabase(serverUrl: string): Promise<TestDatabase> {
  const name = `t_${randomBytes(8).toString('hex')}`;
  await onServer(serverUrl, `create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => onServer(serverUrl, `drop database if exists ${name} with (force)`),
  };
}

/** How long dropping a run's databases may take: each drop checkpoints, which a loaded machine makes slow. */
export const DROP_DATABASES_TIMEOUT_MS = 180_000;

/**
 * Drops every database in `databases` (emptying the list), all at once: one
 * by one, the 40-odd databases of an engine-suite run outlasted a 30 s hook
 * timeout on a busy machine. Use as `afterAll(() => dropTestDatabases(list), DROP_DATABASES_TIMEOUT_MS)`.
 */
export async function dropTestDatabases(databases: TestDatabase[]): Promise<void> {
  await Promise.all(databases.splice(0).map((database) => database.drop()));
}

async function onServer(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/**
 * `describe` for tests that need PostgreSQL; `body` gets the server URL.
 * Without a server the block is skipped, or, under CI, replaced by one
 * failing test that says why.
 */
export function describePostgres(name: string, body: (serverUrl: string) => void): void {
  const serverUrl = inject('postgresUrl') ?? null;
  if (serverUrl === null && process.env.CI) {
    const reason = inject('postgresMissingReason') ?? 'the PostgreSQL global setup did not run';
    describe(name, () => {
      it('has a PostgreSQL server (CI must install one)', () => {
        throw new Error(`PostgreSQL tests cannot run: ${reason}`);
      });
    });
    return;
  }
  describe.skipIf(serverUrl === null)(name, () => body(serverUrl ?? ''));
}
