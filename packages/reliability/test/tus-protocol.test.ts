// The tus protocol suite (@attache/testing) on the stacks that ship: SQLite
// + file system through @attache/node, and PostgreSQL + file system.
import {
  createTestDatabase,
  describePostgres,
  describeTusProtocol,
  DROP_DATABASES_TIMEOUT_MS,
  dropTestDatabases,
  type TestDatabase,
} from '@attache/testing';
import { afterAll } from 'vitest';
import { postgresStore, sqliteStore, tusServer } from './tus-stacks.js';

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
