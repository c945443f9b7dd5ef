// tus-js-client (the reference client, from Node) against a running server,
// with the connection cut mid-upload by a TCP proxy in front of it, as a
// flaky network would. Shared by every runtime's interop test: the Node
// adapters (packages/reliability), NestJS, the Worker in miniflare, Bun.
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { Upload, type UploadOptions } from 'tus-js-client';
import { expect } from 'vitest';
import { digestsOf, expectSameBytes, patternBytes } from './tus-suite.js';

export const MIB = 1024 * 1024;

export interface CuttingProxy {
  /** The proxy's origin + the server's path, e.g. `http://127.0.0.1:4000/v1`. */
  baseUrl: string;
  /** Bytes the client sent through the proxy (request lines, headers and bodies). */
  bytesFromClient(): number;
  /** Whether the cut happened. */
  cut(): boolean;
  close(): Promise<void>;
}

/**
 * The cutting proxy's decision, per chunk the client sends: what goes on to
 * the server. Once the client has sent more than `cutAfterBytes` (over all
 * connections), the connection carrying that byte forwards what fits under
 * the threshold and is cut: nothing after it reaches the server, as after a
 * real drop. Later connections pass whole.
 */
export function cutter(cutAfterBytes: number) {
  let fromClient = 0;
  let didCut = false;
  return {
    bytesFromClient: () => fromClient,
    cut: () => didCut,
    /** A new connection's filter: `forward` goes upstream; `cut` says to drop the connection once it is flushed. */
    connection() {
      let cutHere = false;
      return (chunk: Buffer): { forward: Buffer | undefined; cut: boolean } => {
        fromClient += chunk.byteLength;
        // Forwarding chunks that arrive while the cut's last write flushes
        // would hand the server a byte stream with a hole in it (CI, stop 23).
        if (cutHere) return { forward: undefined, cut: false };
        if (!didCut && fromClient > cutAfterBytes) {
          didCut = cutHere = true;
          return { forward: chunk.subarray(0, Math.max(0, chunk.byteLength - (fromClient - cutAfterBytes))), cut: true };
        }
        return { forward: chunk, cut: false };
      };
    },
  };
}

/**
 * A TCP proxy to `baseUrl` that, once, cuts a connection when the client has
 * sent more than `cutAfterBytes` through it (see `cutter`).
 */
export async function cuttingProxy(baseUrl: string, cutAfterBytes: number): Promise<CuttingProxy> {
  const target = new URL(baseUrl);
  const decisions = cutter(cutAfterBytes);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    const pass = decisions.connection();
    let cut = false;
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      const { forward, cut: cutNow } = pass(chunk);
      if (cutNow) {
        cut = true;
        client.pause();
        upstream.write(forward!, drop);
      } else if (forward !== undefined && !upstream.write(forward)) client.pause();
    });
    upstream.on('drain', () => {
      if (!cut) client.resume();
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    client.on('close', drop).on('error', drop);
    upstream.on('close', drop).on('error', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}${target.pathname}`,
    bytesFromClient: decisions.bytesFromClient,
    cut: decisions.cut,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface TusResult {
  uploadUrl: string;
  attachmentId: string;
}

/** Runs one tus-js-client upload to its end (or its error). */
export function tusUpload(file: Uint8Array, options: UploadOptions, onUploadUrl?: (url: string) => void): Promise<TusResult> {
  return new Promise((resolve, reject) => {
    const upload: Upload = new Upload(Buffer.from(file.buffer, file.byteOffset, file.byteLength), {
      metadata: { filename: 'video.mp4', filetype: 'video/mp4' },
      ...options,
      onUploadUrlAvailable: () => onUploadUrl?.(upload.url!),
      onSuccess: ({ lastResponse }) =>
        resolve({ uploadUrl: upload.url!, attachmentId: lastResponse.getHeader('X-Attachment-ID') ?? '' }),
      onError: reject,
    });
    upload.start();
  });
}

/** Downloads attachment `id` and checks its bytes and the CRC-32 and SHA-256 the server reports. */
export async function expectAttachment(baseUrl: string, id: string, file: Uint8Array): Promise<void> {
  const response = await fetch(`${baseUrl}/attachment?id=${id}`);
  expect(response.status).toBe(200);
  expectSameBytes(new Uint8Array(await response.arrayBuffer()), file);
  expect({ crc32: response.headers.get('X-Attachment-CRC32'), sha256: response.headers.get('X-Attachment-SHA256') }).toEqual(digestsOf(file));
}

export interface CutUploadOptions {
  /** Default 6 MiB. */
  size?: number;
  /** Bytes on the wire before the cut; default half the file. */
  cutAfterBytes?: number;
  /** tus-js-client's options (chunkSize, headers...), on top of the endpoint and retries. */
  client?: Omit<UploadOptions, 'endpoint'>;
  /** Query for the creation request, e.g. `?key=videos/1`. */
  query?: string;
}

/**
 * The interop scenario every runtime passes: tus-js-client uploads a file to
 * `<baseUrl>/uploads` through a proxy that cuts the connection mid-upload;
 * the client resumes, the attachment's bytes, CRC-32 and SHA-256 are right,
 * and it was resumed, not restarted: a restart sends every byte before the
 * cut again, a resume only what the server had not stored yet when the
 * connection died (socket buffers on the way: on Bun under load up to
 * 1.4 MiB of a 3 MiB cut), so less than three quarters of them may go again.
 */
export async function expectResumedAfterCut(baseUrl: string, options: CutUploadOptions = {}): Promise<TusResult> {
  const size = options.size ?? 6 * MIB;
  const cutAfterBytes = options.cutAfterBytes ?? size / 2;
  const proxy = await cuttingProxy(baseUrl, cutAfterBytes);
  try {
    const file = patternBytes(size, 11);
    const result = await tusUpload(file, { retryDelays: [0, 100, 500], ...options.client, endpoint: `${proxy.baseUrl}/uploads${options.query ?? ''}` });
    expect(proxy.cut()).toBe(true);
    await expectAttachment(baseUrl, result.attachmentId, file);
    expect(proxy.bytesFromClient() - file.byteLength).toBeLessThan(cutAfterBytes * 0.75);
    return result;
  } finally {
    await proxy.close();
  }
}
