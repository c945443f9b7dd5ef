// Mounts core's bare handler over real HTTP (@hono/node-server) on
// 127.0.0.1, for the shared HTTP contract and the core-only HTTP tests.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createHandler, type HandlerOptions } from '../../src/http/index.js';

export interface MountedHandler {
  /** e.g. `http://127.0.0.1:41234/v1` */
  baseUrl: string;
  close(): Promise<void>;
}

export async function mountHandler(options: HandlerOptions): Promise<MountedHandler> {
  const handler = createHandler(options);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: handler, hostname: '127.0.0.1', port: 0 }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}${options.basePath ?? '/v1'}`,
    close: async () => {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive sockets of the test's fetch client would hold close() open.
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closing;
    },
  };
}
