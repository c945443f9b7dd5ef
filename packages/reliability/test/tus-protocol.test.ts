// The tus protocol suite (@attache/testing) on the stacks that ship: SQLite
// + file system through @attache/node, PostgreSQL + file system, and SQLite
// + S3 (radosgw): each part is a whole object, so S3 needs nothing special.
import {
  createTestDatabase,
  describePostgres,
  describeRadosgw,
  describeTusProtocol,
  DROP_DATABASES_TIMEOUT_MS,
  dropTestDatabases,
  type TestDatabase,
} from '@attache/testing';
import { afterAll } from 'vitest';
import { postgresStore, sqliteS3Store, sqliteStore, tusServer } from './tus-stacks.js';

describeTusProtocol('SQLite + fs through @attache/node', async (options) => tusServer(sqliteStore(options), 'node'));

describePostgres('PostgreSQL', (serverUrl) => {
  const databases: TestDatabase[] = [];
  afterAll(() => dropTestDatabases(databases), DROP_DATABASES_TIMEOUT_MS);
  describeTusProtocol('PostgreSQL + fs through @attache/node', async (options) => {
    const database = await createTestDatabase(serverUrl);
    databases.push(database);
    return tusServer(postgresStore(database.url, options), 'node');
  });
});

describeRadosgw('S3 on radosgw', (s3) => {
  describeTusProtocol('SQLite + S3 (radosgw) through @attache/node', async (options) => tusServer(sqliteS3Store(s3, options), 'node'));
});
