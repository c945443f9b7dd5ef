// The HTTP contract over a plain `node:http` server through `toNodeListener`
// (the conversion pair is the whole adapter), so this proves it end to end.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHandler, memoryBlobs, memoryMetadata } from '@attache/core';
import { describeHttpContract } from '@attache/testing';
import { toNodeListener } from '../src/index.js';

describeHttpContract('node:http (toNodeListener)', async (options) => {
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
});

// The same contract with encryption at rest on: clients see no difference.
describeHttpContract(
  'node:http (toNodeListener), encrypted at rest',
  async (options) => {
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
  },
  async () => ({
    metadata: memoryMetadata(),
    blobs: memoryBlobs(),
    encryption: { keys: { k1: new Uint8Array(32).fill(3) }, activeKeyId: 'k1' },
  }),
);
