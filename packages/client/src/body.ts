// Request bodies: streamed where the runtime can (Node, Bun, Workers), else
// collected into a Blob (browsers stream request bodies only over HTTP/2, and
// `fetch` cannot tell which protocol it will get). Progress counts the bytes
// the transport has taken from the body.
import type { AttachmentBody } from '@attache/core';

export interface UploadProgress {
  /** Bytes handed to the transport so far. */
  sentBytes: number;
  /** The declared size, when known. */
  totalBytes: number | undefined;
}

export type ProgressCallback = (progress: UploadProgress) => void;

/** Whether `fetch` here accepts a `ReadableStream` request body (the standard feature test). */
export function canStreamRequestBodies(): boolean {
  // Browsers only stream over HTTP/2 and fail otherwise; collect there.
  if (typeof (globalThis as { document?: unknown }).document !== 'undefined') return false;
  try {
    let duplexAccessed = false;
    const request = new Request('http://localhost/', {
      method: 'POST',
      body: new ReadableStream(),
      get duplex() {
        duplexAccessed = true;
        return 'half';
      },
    } as RequestInit);
    return duplexAccessed && !request.headers.has('content-type');
  } catch {
    return false;
  }
}

function toStream(body: AttachmentBody | Blob): ReadableStream<Uint8Array> {
  if (body instanceof ReadableStream) return body;
  if (body instanceof Blob) return body.stream() as ReadableStream<Uint8Array>;
  if (body instanceof Uint8Array) return new Blob([body as Uint8Array<ArrayBuffer>]).stream() as ReadableStream<Uint8Array>;
  const iterator = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await iterator.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel(reason) {
        await iterator.return?.(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Counts what the transport pulls, reporting each chunk. */
function counted(stream: ReadableStream<Uint8Array>, totalBytes: number | undefined, onProgress: ProgressCallback | undefined): ReadableStream<Uint8Array> {
  if (!onProgress) return stream;
  let sentBytes = 0;
  onProgress({ sentBytes, totalBytes });
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>(
      {
        transform(chunk, controller) {
          controller.enqueue(chunk);
          sentBytes += chunk.byteLength;
          onProgress({ sentBytes, totalBytes });
        },
      },
      // A writable side of 0 would never signal ready to pipeThrough; 1 chunk in flight, none queued after.
      { highWaterMark: 1 },
      { highWaterMark: 0 },
    ),
  );
}

/** What to hand `fetch`: a counted stream, or (without stream support) the collected bytes. */
export async function requestBody(
  body: AttachmentBody | Blob,
  options: { streaming: boolean; totalBytes?: number | undefined; onProgress?: ProgressCallback | undefined },
): Promise<ReadableStream<Uint8Array> | Blob> {
  const totalBytes = options.totalBytes ?? (body instanceof Blob ? body.size : body instanceof Uint8Array ? body.byteLength : undefined);
  if (options.streaming) return counted(toStream(body), totalBytes, options.onProgress);
  // Collected: the whole body is read first; progress reports as it is read.
  const blob = await new Response(counted(toStream(body), totalBytes, options.onProgress)).blob();
  return blob;
}
