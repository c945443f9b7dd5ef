// The HTTP contract over a plain `node:http` server through `toNodeListener`
// (the conversion pair is the whole adapter), so this proves it end to end.
import { createHandler, memoryBlobs, memoryMetadata } from '@attache/core';
import { describeHttpContract, listenOnLoopback, type MountFn } from '@attache/testing';
import { toNodeListener } from '../src/index.js';

const mountOnNodeHttp: MountFn = (options) => listenOnLoopback(toNodeListener(createHandler({ ...options, basePath: '/v1' })));

describeHttpContract('node:http (toNodeListener)', mountOnNodeHttp);

// The same contract with encryption at rest on: clients see no difference.
describeHttpContract(
  'node:http (toNodeListener), encrypted at rest',
  mountOnNodeHttp,
  async () => ({
    metadata: memoryMetadata(),
    blobs: memoryBlobs(),
    encryption: { keys: { k1: new Uint8Array(32).fill(3) }, activeKeyId: 'k1' },
  }),
);
