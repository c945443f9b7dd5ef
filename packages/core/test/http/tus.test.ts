// The tus routes on core's bare handler (@hono/node-server) over memory ports.
import { describeTusProtocol } from '../../../testing/src/tus-suite.js';
import { memoryBlobs } from '../../src/memory/blobs.js';
import { memoryMetadata } from '../../src/memory/metadata.js';
import { createAttachmentStore } from '../../src/store.js';
import { mountHandler } from './server.js';

describeTusProtocol('core handler on memory ports', async (options) => {
  let skew = 0;
  const blobs = memoryBlobs();
  const store = createAttachmentStore({ metadata: memoryMetadata(), blobs, now: () => Date.now() + skew, ...options });
  const mounted = await mountHandler({ store });
  return {
    baseUrl: mounted.baseUrl,
    store,
    blobs,
    advance: (ms) => void (skew += ms),
    close: async () => {
      await mounted.close();
      await store.close();
    },
  };
});
