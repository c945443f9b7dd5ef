// The engine specification on the stacks `attache serve` runs: the embedded
// default (SQLite + local files), PostgreSQL + local files and PostgreSQL +
// S3 (Ceph's RADOS Gateway), each with a real restart (new port instances
// over the same database and blobs). The embedded default runs once more
// with encryption at rest on.
import { s3Blobs } from '@attache/s3';
import { postgresMetadata } from '@attache/sql/postgres';
import {
  createTestDatabase,
  describeAttachmentEngine,
  describePostgres,
  DROP_DATABASES_TIMEOUT_MS,
  dropTestDatabases,
  describeRadosgw,
  withInlineBlobs,
  type TestDatabase,
} from '@attache/testing';
import { afterAll } from 'vitest';
import { postgresFsStack, sqliteFsStack } from './stacks.js';

describeAttachmentEngine('sqlite + fs', sqliteFsStack('attache-engine-'));

// The embedded default again, with encryption at rest on (ATTACHE_MASTER_KEY).
describeAttachmentEngine('sqlite + fs, encrypted at rest', {
  ...sqliteFsStack('attache-engine-'),
  storeOptions: { encryption: { keys: { k1: new Uint8Array(32).fill(5) }, activeKeyId: 'k1' } },
});

// Small blobs inline in SQLite, as `attache serve` keeps them by default.
describeAttachmentEngine('sqlite + fs, small blobs inline', withInlineBlobs(sqliteFsStack('attache-engine-')));

describePostgres('PostgreSQL stack', (serverUrl) => {
  describeAttachmentEngine('postgres + fs', {
    ...postgresFsStack(serverUrl, 'attache-engine-'),
    // Separate pools on one database: two server processes.
    concurrentInstances: true,
  });
  describeAttachmentEngine('postgres + fs, small blobs inline', withInlineBlobs({
    ...postgresFsStack(serverUrl, 'attache-engine-'),
    concurrentInstances: true,
  }));
});

describePostgres('PostgreSQL + S3 stack', (serverUrl) => {
  // S3 is Ceph's RADOS Gateway, the run's shared cluster.
  describeRadosgw('on radosgw', (s3) => {
    const databases: TestDatabase[] = [];
    afterAll(() => dropTestDatabases(databases), DROP_DATABASES_TIMEOUT_MS);

    let database: TestDatabase;
    let prefix = '';
    let prefixCounter = 0;
    const postgresS3Ports = () => ({
      metadata: postgresMetadata({ connectionString: database.url }),
      blobs: s3Blobs({
        bucket: s3.bucket,
        // Each scenario gets its own prefix in the shared bucket, as it gets its own database.
        prefix,
        endpoint: s3.endpoint,
        region: s3.region,
        credentials: s3.credentials,
        forcePathStyle: true,
      }),
    });

    describeAttachmentEngine('postgres + s3', {
      create: async () => {
        database = await createTestDatabase(serverUrl);
        databases.push(database);
        prefix = `engine-stacks-${++prefixCounter}/`;
        return postgresS3Ports();
      },
      reopen: async () => postgresS3Ports(),
      concurrentInstances: true,
    });
  });
});
