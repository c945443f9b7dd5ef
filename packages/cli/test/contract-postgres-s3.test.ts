// The HTTP contract on the distributed stack `attache serve` runs with
// ATTACHE_DATABASE_URL and ATTACHE_S3_BUCKET: PostgreSQL metadata, S3 blobs on
// Ceph's RADOS Gateway (the run's shared cluster). Twice: mounted in-process
// as `serve()` mounts it (core's handler at /v1 through @attache/node), where
// the scenarios that move the store's clock or take the database down run;
// and through the built `attache serve` process itself, configured only by
// its environment. Each gets its own database and key prefix.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createAttachmentStore, createHandler } from '@attache/core';
import { toNodeListener } from '@attache/node';
import { s3Blobs } from '@attache/s3';
import { postgresMetadata } from '@attache/sql/postgres';
import {
  attacheS3Environment,
  createTestDatabase,
  describeExternalHttpContract,
  describeHttpContract,
  describePostgres,
  describeRadosgw,
  listenOnLoopback,
  type MountFn,
  type TestDatabase,
} from '@attache/testing';
import { afterAll, beforeAll, expect } from 'vitest';
import { assertBuilt, startServer, stopServer } from './process-helpers.js';

const mountLikeServe: MountFn = (options) => listenOnLoopback(toNodeListener(createHandler({ ...options, basePath: '/v1' })));

describePostgres('HTTP contract on PostgreSQL + S3', (serverUrl) => {
  describeRadosgw('on radosgw', (s3) => {
    const databases: TestDatabase[] = [];
    afterAll(async () => {
      for (const database of databases.splice(0)) await database.drop();
    });

    const bucketUnder = (prefix: string) =>
      s3Blobs({
        bucket: s3.bucket,
        prefix,
        endpoint: s3.endpoint,
        region: s3.region,
        credentials: s3.credentials,
        forcePathStyle: true,
      });

    describeHttpContract('attache serve mount, PostgreSQL + S3 (radosgw)', mountLikeServe, async () => {
      const database = await createTestDatabase(serverUrl);
      databases.push(database);
      const metadata = postgresMetadata({ connectionString: database.url });
      await metadata.migrate();
      return { metadata, blobs: bucketUnder(`contract-${randomBytes(6).toString('hex')}/`) };
    });

    beforeAll(assertBuilt);
    describeExternalHttpContract(
      'the attache serve process, PostgreSQL + S3 (radosgw)',
      async () => {
        const database = await createTestDatabase(serverUrl);
        databases.push(database);
        const prefix = `contract-serve-${randomBytes(6).toString('hex')}/`;
        // Never created: on PostgreSQL + S3 the data directory stays untouched.
        const dataDir = join(tmpdir(), `attache-contract-unused-${randomBytes(4).toString('hex')}`);
        const server = await startServer(dataDir, { ATTACHE_DATABASE_URL: database.url, ...attacheS3Environment(s3, prefix) });
        // The same store in this process, to look at what the server keeps.
        const metadata = postgresMetadata({ connectionString: database.url });
        const blobs = bucketUnder(prefix);
        const store = createAttachmentStore({ metadata, blobs });
        return {
          baseUrl: `${server.url}/v1`,
          store,
          blobs,
          async close() {
            const exit = await stopServer(server);
            await store.close();
            expect(exit.code, `attache serve's stderr: ${server.output.stderr}`).toBe(0);
          },
        };
      },
      // A body below one S3 part reaches the bucket only when it ends.
      { writesInFlight: false },
    );
  });
});
