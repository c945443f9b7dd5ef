// The seed interface's one specification (packages/testing/src/seed-suite.ts),
// here against @attache/client talking to a real server over loopback.
import { describeSeedInterface } from '@attache/testing';
import { describe } from 'vitest';
import { createClient } from '../src/index.js';
import { startServer } from './server.js';

describe('@attache/client over HTTP', () => {
  describeSeedInterface('@attache/client', {
    async open() {
      const server = await startServer();
      return { store: createClient({ baseUrl: server.baseUrl }), blobPaths: () => server.blobPaths(), close: () => server.close() };
    },
    explicitExtension: false,
  });
});
