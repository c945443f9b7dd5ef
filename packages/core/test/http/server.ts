// Serves a handler over real HTTP on 127.0.0.1 for the integration tests.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createHandler, type HandlerOptions } from '../../src/http/index.js';
import { memoryBlobs } from '../../src/memory/blobs.js';
import { memoryMetadata } from '../../src/memory/metadata.js';
import { createAttachmentStore } from '../../src/store.js';
import type { AttachmentStore } from '../../src/types.js';

export interface TestServer {
  /** e.g. `http://127.0.0.1:41234/v1` */
  base: string;
  store: AttachmentStore;
  /** Moves the store's clock forward (leases expire without waiting). */
  advance(seconds: number): void;
  close(): Promise<void>;
}

export async function startServer(options: Omit<HandlerOptions, 'store'> & { maxBytes?: number } = {}): Promise<TestServer> {
  let offsetMs = 0;
  const { maxBytes, ...handlerOptions } = options;
  const store = createAttachmentStore({
    metadata: memoryMetadata(),
    blobs: memoryBlobs(),
    sweepIntervalSeconds: 0,
    now: () => Date.now() + offsetMs,
    ...(maxBytes === undefined ? {} : { maxBytes }),
  });
  const handler = createHandler({ store, ...handlerOptions });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: handler, hostname: '127.0.0.1', port: 0 }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  const basePath = handlerOptions.basePath ?? '/v1';
  return {
    base: `http://127.0.0.1:${port}${basePath}`,
    store,
    advance: (seconds) => {
      offsetMs += seconds * 1000;
    },
    close: async () => {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive sockets of the test's fetch client would hold close() open.
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closing;
      await store.close();
    },
  };
}
