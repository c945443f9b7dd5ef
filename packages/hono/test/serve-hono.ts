// Serves a Hono app over real HTTP on 127.0.0.1 (via @hono/node-server) for the tests.
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';

export interface RunningHono {
  /** e.g. `http://127.0.0.1:41234` (no trailing slash). */
  origin: string;
  close(): Promise<void>;
}

export async function serveHono(app: Hono): Promise<RunningHono> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: async () => {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive sockets of the test's fetch client would hold close() open.
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closing;
    },
  };
}

/** `totalBytes` of a repeating, position-dependent pattern, produced on demand in `chunkBytes` chunks. */
export function patternStream(totalBytes: number, chunkBytes = 64 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (sent >= totalBytes) {
          controller.close();
          return;
        }
        const chunk = new Uint8Array(Math.min(chunkBytes, totalBytes - sent));
        for (let index = 0; index < chunk.length; index++) chunk[index] = (sent + index) % 251;
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
}

/** SHA-256 (hex) of everything a stream yields, read chunk by chunk. */
export async function sha256Hex(stream: ReadableStream<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * POSTs `body` as it is produced. `duplex: 'half'` is required by undici for
 * stream bodies and missing from the DOM typings, hence the cast.
 */
export function postStreaming(url: string, body: BodyInit, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { method: 'POST', ...init, body, duplex: 'half' } as RequestInit);
}
