// Conversions between the port's Web streams and the Node streams the AWS SDK
// uses on Node. Both directions pull one chunk per demand, so backpressure
// reaches the producer (uploads) and the socket (downloads).
import type { Readable } from 'node:stream';
import { toStoreError } from './errors.js';

/**
 * Yields the chunks of a blob body for the uploader. A chunk that is not a
 * `Uint8Array` throws a `TypeError`; an abort of `signal` throws its reason,
 * even after the reader was cancelled (a cancelled read looks like a normal
 * end, and must never complete an upload with truncated bytes).
 */
export async function* sourceChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  for (;;) {
    const { done, value } = await reader.read();
    if (signal?.aborted) throw signal.reason;
    if (done) return;
    if (!(value instanceof Uint8Array)) throw new TypeError('blob stream chunks must be Uint8Array');
    yield value;
  }
}

/**
 * A pull-based Web stream over an S3 response body that yields at most
 * `maxBytes` (some S3-compatible servers answer a range with more bytes than
 * asked; callers must never see them). Cancelling it, or reaching the limit
 * before the body ends, destroys the response so its socket is not leaked.
 */
export function responseStream(body: Readable, maxBytes: number): ReadableStream<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]();
  let remaining = maxBytes;
  const release = () => {
    body.destroy();
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (remaining <= 0) {
          release();
          controller.close();
          return;
        }
        let next: IteratorResult<unknown>;
        try {
          next = await chunks.next();
        } catch (error) {
          release();
          throw toStoreError(error, 'GetObject (reading the body)');
        }
        if (next.done) {
          controller.close();
          return;
        }
        const value = next.value;
        if (!(value instanceof Uint8Array)) {
          release();
          throw new TypeError('S3 response body yielded a non-byte chunk');
        }
        const chunk = value.byteLength > remaining ? value.subarray(0, remaining) : value;
        remaining -= chunk.byteLength;
        controller.enqueue(chunk);
        if (remaining <= 0) {
          release();
          controller.close();
        }
      },
      cancel() {
        release();
      },
    },
    { highWaterMark: 0 },
  );
}
