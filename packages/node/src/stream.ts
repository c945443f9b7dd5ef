// A Node `Readable` as a Web pull stream: a chunk is taken from the Node
// stream only when the consumer asks for one, so backpressure reaches the
// source (for a request, the TCP socket). A source that closes before its
// end, or fails, errors the Web stream: a consumer can tell a cut-off body
// from a complete one.
import type { Readable } from 'node:stream';

export interface ReadableToWebOptions {
  /** More bytes than this error the stream with `tooLarge()`. */
  maxBytes?: number;
  tooLarge?: () => unknown;
  /** The error for a source that closed before its end (default: a generic Error). */
  cutShort?: () => unknown;
  /** Aborting it errors the stream with the signal's reason (e.g. a parser's size limit was hit). */
  failWith?: AbortSignal;
  /**
   * Aborting it lets go of the source: our listeners are removed and it
   * flows freely (its bytes dropped), for a consumer that walked away without
   * cancelling (see `discardUnreadBody` in request.ts).
   */
  abandonWhen?: AbortSignal;
}

export function readableToWebStream(readable: Readable, options: ReadableToWebOptions = {}): ReadableStream<Uint8Array> {
  const { maxBytes, failWith } = options;
  let received = 0;
  let failure: unknown;
  let ended = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (error: unknown) => {
    failure ??= error;
    notify();
  };
  const onClose = () => {
    if (!ended) failure ??= options.cutShort?.() ?? new Error('the stream closed before its end');
    notify();
  };
  const onFail = () => onError(failWith?.reason);
  const detach = () => {
    readable.off('readable', notify);
    readable.off('end', onEnd);
    readable.off('error', onError);
    readable.off('close', onClose);
    failWith?.removeEventListener('abort', onFail);
    options.abandonWhen?.removeEventListener('abort', onAbandon);
  };
  const onAbandon = () => {
    detach();
    readable.resume();
  };

  return new ReadableStream<Uint8Array>(
    {
      start() {
        // 'readable' (not 'data') keeps the source paused: Node reads from
        // the socket only while the stream's small internal buffer has room.
        readable.on('readable', notify);
        readable.on('end', onEnd);
        readable.on('error', onError);
        readable.on('close', onClose);
        if (failWith?.aborted) onFail();
        else failWith?.addEventListener('abort', onFail, { once: true });
        options.abandonWhen?.addEventListener('abort', onAbandon, { once: true });
        if (readable.readableEnded) ended = true;
      },
      async pull(controller) {
        for (;;) {
          if (failure !== undefined) {
            detach();
            // Let the source run to its end (a parser waiting on it must not stall); the bytes are dropped.
            readable.resume();
            controller.error(failure);
            return;
          }
          const chunk = readable.read() as Buffer | string | null;
          if (chunk !== null) {
            const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
            received += bytes.byteLength;
            if (maxBytes !== undefined && received > maxBytes) {
              failure = options.tooLarge?.() ?? new RangeError(`more than ${maxBytes} bytes`);
              continue;
            }
            controller.enqueue(bytes);
            return;
          }
          if (ended || readable.readableEnded) {
            detach();
            controller.close();
            return;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      },
      cancel() {
        // The consumer is done early (a limit, a checksum, an error answer):
        // drop the rest rather than holding it, as Node does for any request
        // body a handler never read.
        detach();
        readable.resume();
      },
    },
    // Nothing is read ahead of the consumer beyond the Node stream's own buffer.
    { highWaterMark: 0 },
  );
}
