// Small Web-stream helpers. Every stream here is pull-based with no internal
// queue (highWaterMark 0), so backpressure reaches the original source and
// memory per upload stays at a few chunks whatever the size.
import { AttacheError } from './errors.js';
import { createDigest, type Digests } from './hash.js';
import type { AttachmentBody } from './types.js';

export function toReadableStream(body: AttachmentBody): ReadableStream<Uint8Array> {
  if (body instanceof ReadableStream) return body;
  if (body instanceof Uint8Array) {
    let sent = false;
    return new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (!sent && body.byteLength > 0) controller.enqueue(body);
          sent = true;
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
  }
  if (body && typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
    const iterator = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    return new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const { value, done } = await iterator.next();
          if (done) controller.close();
          else controller.enqueue(value);
        },
        async cancel(reason) {
          await iterator.return?.(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }
  throw new AttacheError('invalid_body', 'body must be a ReadableStream, a Uint8Array or an AsyncIterable of Uint8Array');
}

export interface MeterOptions {
  /** Error at once with `attachment_too_large` past this many bytes; 0 = no limit. */
  maxBytes: number;
  /** Error at once with `size_mismatch` past this many bytes. */
  expectedSize?: number | undefined;
  /** Called between chunks; may be async (e.g. to renew a lease). */
  onProgress?: ((bytesSoFar: number) => void | Promise<void>) | undefined;
}

export interface MeteredStream {
  stream: ReadableStream<Uint8Array>;
  /** Byte count and digests; valid once `stream` has been read to its end. */
  result(): { size: number } & Digests;
}

/** Counts, hashes and limits a stream as it is read. */
export function meter(source: ReadableStream<Uint8Array>, options: MeterOptions): MeteredStream {
  const reader = source.getReader();
  const digest = createDigest();
  let size = 0;
  let digests: Digests | undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) {
          digests = digest.digest();
          controller.close();
          return;
        }
        if (!(value instanceof Uint8Array)) {
          throw new AttacheError('invalid_body', 'body chunks must be Uint8Array');
        }
        size += value.byteLength;
        if (options.maxBytes > 0 && size > options.maxBytes) {
          const error = new AttacheError('attachment_too_large', `attachment is larger than ${options.maxBytes} bytes`);
          await reader.cancel(error).catch(() => {});
          throw error;
        }
        if (options.expectedSize !== undefined && size > options.expectedSize) {
          const error = new AttacheError('size_mismatch', `body is larger than the declared ${options.expectedSize} bytes`);
          await reader.cancel(error).catch(() => {});
          throw error;
        }
        digest.update(value);
        controller.enqueue(value);
        await options.onProgress?.(size);
      },
      async cancel(reason) {
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    result() {
      if (!digests) throw new Error('meter: stream not fully read');
      return { size, ...digests };
    },
  };
}

/** Errors the stream with the signal's reason when it aborts, as `fetch` does, and cancels the source. */
export function abortable(source: ReadableStream<Uint8Array>, signal: AbortSignal | undefined): ReadableStream<Uint8Array> {
  if (!signal) return source;
  const reader = source.getReader();
  let onAbort: (() => void) | undefined;
  const cleanup = () => {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    onAbort = undefined;
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        onAbort = () => {
          cleanup();
          controller.error(signal.reason);
          reader.cancel(signal.reason).catch(() => {});
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      },
      async pull(controller) {
        try {
          const { value, done } = await reader.read();
          if (signal.aborted) return;
          if (done) {
            cleanup();
            controller.close();
          } else controller.enqueue(value);
        } catch (error) {
          cleanup();
          if (!signal.aborted) controller.error(error);
        }
      },
      async cancel(reason) {
        cleanup();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

export function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
}

/**
 * The request body as the engine should see it: cancelling it (an upload
 * refused mid-way: too large, a no-op, a lease error) only stops reading and
 * leaves the rest to the host. A host may tear the connection down when its
 * body is cancelled, and the client would then never read our 413; left
 * alone, hosts discard the unread rest and keep the answer deliverable.
 * `readToEnd()` tells whether the whole body was read, so the answer can ask
 * the client not to reuse a connection that still carries unread bytes.
 */
export function requestBodyOf(source: ReadableStream<Uint8Array>): {
  stream: ReadableStream<Uint8Array>;
  readToEnd(): boolean;
} {
  const reader = source.getReader();
  let ended = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          controller.close();
        } else controller.enqueue(value);
      },
      cancel() {
        try {
          reader.releaseLock();
        } catch {
          // A read still pending keeps the lock on old runtimes; nothing to free then.
        }
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, readToEnd: () => ended };
}

/**
 * Reads `reader` until its stream ends or more than `limitBytes` have come
 * (`ended` false: the reader stays locked, for the caller to read the rest
 * or let go). On a failed read, a chunk that is not bytes or an abort of
 * `signal`, the stream is cancelled, the lock released and the error thrown.
 */
export async function readUpTo(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limitBytes: number,
  signal?: AbortSignal,
): Promise<{ chunks: Uint8Array[]; size: number; ended: boolean }> {
  // Cancelling the reader settles a pending `read()` as done, so the loop ends promptly.
  const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    if (signal?.aborted) throw signal.reason;
    signal?.addEventListener('abort', onAbort, { once: true });
    for (;;) {
      const { done, value } = await reader.read();
      if (signal?.aborted) throw signal.reason;
      if (done) {
        reader.releaseLock();
        return { chunks, size, ended: true };
      }
      if (!(value instanceof Uint8Array)) throw new TypeError('blob stream chunks must be Uint8Array');
      chunks.push(value);
      size += value.byteLength;
      if (size > limitBytes) return { chunks, size, ended: false };
    }
  } catch (error) {
    // Tell the producer to stop; a no-op when the stream itself errored.
    await reader.cancel(error).catch(() => {});
    reader.releaseLock();
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** `chunks` as one array of `size` bytes (the chunk itself when there is only one). */
export function concatBytes(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const whole = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.byteLength;
  }
  return whole;
}
