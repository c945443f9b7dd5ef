// Key rotation (`store.rotateKeys`) on the stacks `attache serve` runs with
// local files: SQLite and PostgreSQL metadata, each with real restarts (new
// port instances over the same database and blobs).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsBlobs } from '@attache/fs';
import { postgresMetadata } from '@attache/sql/postgres';
import { sqliteMetadata } from '@attache/sql/sqlite';
import {
  createTestDatabase,
  describeKeyRotation,
  describePostgres,
  DROP_DATABASES_TIMEOUT_MS,
  dropTestDatabases,
  type TestDatabase,
} from '@attache/testing';
import { afterAll } from 'vitest';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const newDirectory = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'attache-rotation-'));
  dirs.push(dir);
  return dir;
};

let current = '';
const portsAt = (dir: string) => ({
  metadata: sqliteMetadata({ filename: join(dir, 'attache.db') }),
  blobs: fsBlobs({ root: join(dir, 'blobs') }),
});

describeKeyRotation('sqlite + fs', {
  create: async () => {
    current = newDirectory();
    return portsAt(current);
  },
  reopen: async () => portsAt(current),
});

describePostgres('PostgreSQL stack', (serverUrl) => {
  const databases: TestDatabase[] = [];
  afterAll(() => dropTestDatabases(databases), DROP_DATABASES_TIMEOUT_MS);

  let database: TestDatabase;
  let blobRoot = '';
  const postgresPorts = () => ({
    metadata: postgresMetadata({ connectionString: database.url }),
    blobs: fsBlobs({ root: blobRoot }),
  });

  describeKeyRotation('postgres + fs', {
    create: async () => {
      database = await createTestDatabase(serverUrl);
      databases.push(database);
      blobRoot = join(newDirectory(), 'blobs');
      return postgresPorts();
    },
    reopen: async () => postgresPorts(),
  });
});
