// A real attache server on loopback for the client's tests: core's handler
// on node:http through @attache/node, over in-memory storage.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAttachmentStore, createHandler, memoryBlobs, memoryMetadata, type AttachmentStore, type BlobStore } from '@attache/core';
import { toNodeListener } from '@attache/node';

export interface TestServer {
  baseUrl: string;
  store: AttachmentStore;
  blobs: BlobStore;
  blobPaths(): Promise<string[]>;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function shut(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export async function startServer(options: { token?: string } = {}): Promise<TestServer> {
  const blobs = memoryBlobs();
  const store = createAttachmentStore({ metadata: memoryMetadata(), blobs, sweepIntervalSeconds: 0 });
  const handler = createHandler({ store, basePath: '/v1', ...(options.token ? { token: options.token } : {}) });
  const server = createServer(toNodeListener(handler));
  const origin = await listen(server);
  return {
    baseUrl: `${origin}/v1`,
    store,
    blobs,
    async blobPaths() {
      const paths: string[] = [];
      for await (const blob of blobs.list('')) paths.push(blob.path);
      return paths;
    },
    async close() {
      await shut(server);
      await store.close();
    },
  };
}

export interface FlakyProxy {
  baseUrl: string;
  /** Requests seen, as `METHOD path`. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * A node:http proxy in front of `target` that answers the first `failures`
 * requests with 503 `unavailable` and `Retry-After: 1`, as a busy server
 * does, and forwards everything else.
 */
export async function startFlakyProxy(target: string, failures = 1): Promise<FlakyProxy> {
  const upstream = new URL(target);
  const seen: string[] = [];
  let failed = 0;
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (failed < failures) {
      failed += 1;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1', connection: 'close' });
      res.end('{"error":"unavailable","detail":"busy","retry_after_seconds":1}\n');
      return;
    }
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const origin = await listen(server);
  return { baseUrl: `${origin}${upstream.pathname}`, seen, close: () => shut(server) };
}
