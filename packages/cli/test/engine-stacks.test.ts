// The engine specification on the stacks `attache serve` runs: the embedded
// default (SQLite + local files) and PostgreSQL + local files, each with a
// real restart (new port instances over the same database and files).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsBlobs } from '@attache/fs';
import { postgresMetadata, sqliteMetadata } from '@attache/sql';
import { createTestDatabase, describeAttachmentEngine, describePostgres, type TestDatabase } from '@attache/testing';
import { afterAll } from 'vitest';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const newDirectory = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'attache-engine-'));
  dirs.push(dir);
  return dir;
};

let current = '';
const portsAt = (dir: string) => ({
  metadata: sqliteMetadata({ filename: join(dir, 'attache.db') }),
  blobs: fsBlobs({ root: join(dir, 'blobs') }),
});

describeAttachmentEngine('sqlite + fs', {
  create: async () => {
    current = newDirectory();
    return portsAt(current);
  },
  reopen: async () => portsAt(current),
});

describePostgres('PostgreSQL stack', (serverUrl) => {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const database of databases.splice(0)) await database.drop();
  });

  let database: TestDatabase;
  let blobRoot = '';
  const postgresPorts = () => ({
    metadata: postgresMetadata({ connectionString: database.url }),
    blobs: fsBlobs({ root: blobRoot }),
  });

  describeAttachmentEngine('postgres + fs', {
    create: async () => {
      database = await createTestDatabase(serverUrl);
      databases.push(database);
      blobRoot = join(newDirectory(), 'blobs');
      return postgresPorts();
    },
    reopen: async () => postgresPorts(),
  });
});
