// A pull-based Web stream over an open file: it reads one chunk per consumer
// demand, and closes the file descriptor when it ends, errors or is cancelled.
import { Buffer } from 'node:buffer';
import type { FileHandle } from 'node:fs/promises';

// 256 KiB reads: a quarter of the syscalls and stream hand-offs of 64 KiB,
// still small beside the socket's buffer. Allocated unfilled: only the bytes
// the read filled are handed on (`subarray(0, bytesRead)`).
const CHUNK_BYTES = 256 * 1024;

/** Streams bytes `[start, endExclusive)` of the file; takes ownership of `handle`. */
export function fileStream(handle: FileHandle, start: number, endExclusive: number): ReadableStream<Uint8Array> {
  let position = start;
  let closing: Promise<void> | undefined;
  // Idempotent: `cancel` may race a `pull` that is still reading.
  const closeFile = () => (closing ??= handle.close().catch(() => {}));

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const wanted = Math.min(CHUNK_BYTES, endExclusive - position);
        if (wanted > 0) {
          const buffer = Buffer.allocUnsafe(wanted);
          const { bytesRead } = await handle.read(buffer, 0, wanted, position);
          if (closing !== undefined) return; // cancelled meanwhile
          position += bytesRead;
          if (bytesRead > 0) controller.enqueue(bytesRead === wanted ? buffer : buffer.subarray(0, bytesRead));
          // A short file (bytesRead 0) ends the stream rather than spinning.
          if (bytesRead > 0 && position < endExclusive) return;
        }
        await closeFile();
        controller.close();
      } catch (error) {
        await closeFile();
        throw error; // errors the stream
      }
    },
    async cancel() {
      await closeFile();
    },
  });
}
