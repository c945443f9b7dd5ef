// The stacks `attache serve` runs with local files, as fixtures for the
// shared suites: each `create()` is a fresh store, each `reopen()` new port
// instances over the same database and blobs (a real restart). Call them at
// the top of a test file or inside a describe: they register their cleanup.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlobStore, MetadataStore } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { postgresMetadata } from '@attache/sql/postgres';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { createTestDatabase, DROP_DATABASES_TIMEOUT_MS, dropTestDatabases, type TestDatabase } from '@attache/testing';
import { afterAll } from 'vitest';

interface Ports {
  metadata: MetadataStore;
  blobs: BlobStore;
}

export interface RestartableStack {
  create(): Promise<Ports>;
  reopen(): Promise<Ports>;
}

/** A fresh temporary directory, removed after the file's tests. */
function temporaryDirectories(prefix: string): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

/** The embedded default: SQLite and files in one data directory. */
export function sqliteFsStack(prefix: string): RestartableStack {
  const newDirectory = temporaryDirectories(prefix);
  let current = '';
  const portsAt = (dir: string) => ({
    metadata: sqliteMetadata({ filename: join(dir, 'attache.db') }),
    blobs: fsBlobs({ root: join(dir, 'blobs') }),
  });
  return {
    create: async () => {
      current = newDirectory();
      return portsAt(current);
    },
    reopen: async () => portsAt(current),
  };
}

/** PostgreSQL (a fresh database of the run's server each time) and files. */
export function postgresFsStack(serverUrl: string, prefix: string): RestartableStack {
  const newDirectory = temporaryDirectories(prefix);
  const databases: TestDatabase[] = [];
  afterAll(() => dropTestDatabases(databases), DROP_DATABASES_TIMEOUT_MS);
  let database: TestDatabase;
  let blobRoot = '';
  const ports = () => ({ metadata: postgresMetadata({ connectionString: database.url }), blobs: fsBlobs({ root: blobRoot }) });
  return {
    create: async () => {
      database = await createTestDatabase(serverUrl);
      databases.push(database);
      blobRoot = join(newDirectory(), 'blobs');
      return ports();
    },
    reopen: async () => ports(),
  };
}
