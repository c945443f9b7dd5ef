// In-memory `BlobStore` for tests and edge runtimes. Web platform APIs only:
// core runs on Node, Bun and Workers.
//
// A blob is an immutable list of chunks (copies of what the source produced),
// published at its path only once its stream completed. Readers slice it, so
// a `put` that replaces the path never disturbs a read already under way.
import { AttacheError } from '../errors.js';
import { checkBlobPath } from '../paths.js';
import type { BlobInfo, BlobStore, ByteRange } from '../ports.js';
import { checkByteRange } from '../byte-range.js';
import { readUpTo } from '../streams.js';

interface StoredBlob {
  readonly chunks: readonly Uint8Array[];
  readonly size: number;
  readonly modifiedAt: number;
}

export function memoryBlobs(): BlobStore {
  const blobs = new Map<string, StoredBlob>();

  return {
    async put(path, body, options = {}) {
      try {
        checkBlobPath(path);
      } catch (error) {
        await body.cancel(error).catch(() => {}); // free the producer, as a failed upload would
        throw error;
      }
      const { chunks, size } = await readAllChunks(body, options.signal);
      blobs.set(path, { chunks, size, modifiedAt: Date.now() });
      return { size };
    },

    async get(path, range) {
      checkBlobPath(path);
      if (range !== undefined) checkByteRange(range);
      const blob = blobs.get(path);
      if (blob === undefined) return undefined;
      return streamBlob(blob, range);
    },

    async stat(path) {
      checkBlobPath(path);
      const blob = blobs.get(path);
      return blob === undefined ? undefined : { path, size: blob.size, modifiedAt: blob.modifiedAt };
    },

    async copy(from, to) {
      checkBlobPath(from);
      checkBlobPath(to);
      const blob = blobs.get(from);
      if (blob === undefined) throw new AttacheError('not_found', `blob "${from}" does not exist`);
      // Chunks are never mutated after publication, so both paths can share them.
      blobs.set(to, { ...blob, modifiedAt: Date.now() });
    },

    async delete(path) {
      checkBlobPath(path);
      blobs.delete(path);
    },

    async *list(prefix): AsyncIterable<BlobInfo> {
      // Snapshot first: callers may delete while iterating.
      const matches = [...blobs].filter(([path]) => path.startsWith(prefix));
      for (const [path, blob] of matches) yield { path, size: blob.size, modifiedAt: blob.modifiedAt };
    },
  };
}

/** Consumes the stream, keeping copies of its chunks; rejects with its error, or the signal's reason. */
async function readAllChunks(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<{ chunks: Uint8Array[]; size: number }> {
  const { chunks, size } = await readUpTo(body.getReader(), Infinity, signal);
  return { chunks: chunks.map((chunk) => chunk.slice()), size };
}

function streamBlob(blob: StoredBlob, range: ByteRange | undefined): ReadableStream<Uint8Array> {
  const start = range?.start ?? 0;
  const endExclusive = Math.min(range === undefined ? blob.size : range.end + 1, blob.size);
  let chunkIndex = 0;
  let chunkOffset = 0; // blob offset at which chunks[chunkIndex] begins
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      while (chunkIndex < blob.chunks.length) {
        const chunk = blob.chunks[chunkIndex]!;
        const from = Math.max(start - chunkOffset, 0);
        const to = Math.min(endExclusive - chunkOffset, chunk.byteLength);
        chunkIndex += 1;
        chunkOffset += chunk.byteLength;
        if (to <= 0) break; // past the range
        if (from < to) {
          // A copy: the consumer may mutate what it receives.
          controller.enqueue(chunk.slice(from, to));
          return;
        }
      }
      controller.close();
    },
  });
}

