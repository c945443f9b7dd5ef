// A Node HTTP server on 127.0.0.1 for a test, with the contract suite's
// mounted shape: where its routes answer, and a close that also drops kept
// connections (a test must not wait for idle keep-alive sockets).
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MountedAttache } from './contract/harness.js';

/** Serves `listener` on a free loopback port; `path` is where its routes are mounted (default `/v1`). */
export async function listenOnLoopback(listener: RequestListener, path = '/v1'): Promise<MountedAttache> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}${path}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
