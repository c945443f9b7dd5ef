// Request bodies: streamed where the runtime can (Node, Bun, Workers), else
// collected into a Blob (browsers stream request bodies only over HTTP/2, and
// `fetch` cannot tell which protocol it will get). Progress counts the bytes
// the transport has taken from a streamed body; a collected one is sent
// through XMLHttpRequest where there is one (browsers), which reports the
// bytes sent (xhr.ts), else counted as it is collected.
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

export interface BodySettings {
  /** Stream the body (Node, Bun, Workers); else it is collected into a Blob first. */
  streaming: boolean;
  /** A collected body is sent by a transport that reports bytes sent (XMLHttpRequest). */
  sentWithProgress: boolean;
}

/** A request body, and what the transport reports bytes sent to (only for a collected body sent with progress). */
export interface PreparedBody {
  body: ReadableStream<Uint8Array> | Blob;
  onUploadProgress?: (sentBytes: number) => void;
}

/** What to hand the transport: a counted stream, or (without stream support) the collected bytes. */
export async function requestBody(
  body: AttachmentBody | Blob,
  settings: BodySettings,
  options: { totalBytes?: number | undefined; onProgress?: ProgressCallback | undefined } = {},
): Promise<PreparedBody> {
  const { onProgress } = options;
  const declared = options.totalBytes ?? (body instanceof Blob ? body.size : body instanceof Uint8Array ? body.byteLength : undefined);
  if (settings.streaming) return { body: counted(toStream(body), declared, onProgress) };
  if (onProgress && settings.sentWithProgress) {
    const blob = body instanceof Blob ? body : await new Response(toStream(body)).blob();
    const totalBytes = declared ?? blob.size;
    onProgress({ sentBytes: 0, totalBytes });
    return { body: blob, onUploadProgress: (sentBytes) => onProgress({ sentBytes, totalBytes }) };
  }
  // Collected without a transport that reports sending: progress counts the bytes collected.
  return { body: await new Response(counted(toStream(body), declared, onProgress)).blob() };
}
