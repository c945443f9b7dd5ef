// A blob store wrapper for tests that need to see what the engine streams:
// how many bytes reached `put` so far, and which blobs exist.
import type { BlobStore } from '@attache/core';

export interface WatchedBlobs extends BlobStore {
  /** Bytes the engine has streamed into `put` so far (whether or not the put finished). */
  readonly bytesPut: number;
  /** Every blob path under `state/`, sorted. */
  paths(): Promise<string[]>;
}

export function watchedBlobs(inner: BlobStore): WatchedBlobs {
  let bytesPut = 0;
  return {
    get bytesPut() {
      return bytesPut;
    },
    put: (path, body, options) =>
      inner.put(
        path,
        body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              bytesPut += chunk.byteLength;
              controller.enqueue(chunk);
            },
          }),
        ),
        options,
      ),
    get: (path, range) => inner.get(path, range),
    stat: (path) => inner.stat(path),
    copy: (from, to) => inner.copy(from, to),
    delete: (path) => inner.delete(path),
    list: (prefix) => inner.list(prefix),
    async paths() {
      const found: string[] = [];
      for await (const blob of inner.list('state/')) found.push(blob.path);
      return found.sort();
    },
  };
}
