// The HTTP contract on the distributed stack `attache serve` runs with
// ATTACHE_DATABASE_URL and ATTACHE_S3_BUCKET: PostgreSQL metadata, S3 blobs on
// Ceph's RADOS Gateway (the run's shared cluster), mounted as `serve()` mounts
// it (core's handler at /v1 through @attache/node on a Node HTTP server). The
// suite's servers are in-process, since its scenarios move the store's clock
// and take the database down; each gets its own database and key prefix.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHandler } from '@attache/core';
import { toNodeListener } from '@attache/node';
import { s3Blobs } from '@attache/s3';
import { postgresMetadata } from '@attache/sql/postgres';
import { createTestDatabase, describeHttpContract, describePostgres, describeRadosgw, type MountFn, type TestDatabase } from '@attache/testing';
import { afterAll } from 'vitest';

const mountLikeServe: MountFn = async (options) => {
  const handler = createHandler({ ...options, basePath: '/v1' });
  const server = createServer(toNodeListener(handler));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
};

describePostgres('HTTP contract on PostgreSQL + S3', (serverUrl) => {
  describeRadosgw('on radosgw', (s3) => {
    const databases: TestDatabase[] = [];
    afterAll(async () => {
      for (const database of databases.splice(0)) await database.drop();
    });

    describeHttpContract('attache serve mount, PostgreSQL + S3 (radosgw)', mountLikeServe, async () => {
      const database = await createTestDatabase(serverUrl);
      databases.push(database);
      const metadata = postgresMetadata({ connectionString: database.url });
      await metadata.migrate();
      const blobs = s3Blobs({
        bucket: s3.bucket,
        prefix: `contract-${randomBytes(6).toString('hex')}/`,
        endpoint: s3.endpoint,
        region: s3.region,
        credentials: s3.credentials,
        forcePathStyle: true,
      });
      return { metadata, blobs };
    });
  });
});
