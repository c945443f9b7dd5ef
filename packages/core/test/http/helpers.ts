// Builders for handcrafted request bodies used by the HTTP tests. The byte
// helpers are the contract suite's (imported by relative path: core cannot
// depend on @attache/testing, which depends on core).
import { bytes, concat } from '../../../testing/src/contract/bodies.js';

export { bytes, concat };

export interface FormPart {
  name: string;
  filename?: string;
  /** Raw `filename*` parameter value, e.g. `UTF-8''%E2%82%AC.txt`. */
  filenameStar?: string;
  contentType?: string;
  data: string | Uint8Array;
}

/** A multipart/form-data body, byte for byte as a browser would send it. */
export function multipartBody(boundary: string, parts: readonly FormPart[], options: { close?: boolean } = {}): Uint8Array<ArrayBuffer> {
  const chunks: Uint8Array[] = [];
  for (const part of parts) {
    let disposition = `form-data; name="${part.name}"`;
    if (part.filename !== undefined) disposition += `; filename="${part.filename}"`;
    if (part.filenameStar !== undefined) disposition += `; filename*=${part.filenameStar}`;
    let head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n`;
    if (part.contentType !== undefined) head += `Content-Type: ${part.contentType}\r\n`;
    chunks.push(bytes(`${head}\r\n`));
    chunks.push(typeof part.data === 'string' ? bytes(part.data) : part.data);
    chunks.push(bytes('\r\n'));
  }
  if (options.close ?? true) chunks.push(bytes(`--${boundary}--\r\n`));
  return concat(chunks);
}

/** Splits `data` at the given offsets. */
export function splitAt(data: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let previous = 0;
  for (const offset of [...offsets, data.byteLength]) {
    chunks.push(data.slice(previous, offset));
    previous = offset;
  }
  return chunks;
}

export function chunksOf(data: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < data.byteLength; offset += size) chunks.push(data.slice(offset, offset + size));
  return chunks;
}

/** A pull-only stream over chunks that records how many were pulled. */
export function countingStream(chunks: readonly Uint8Array[]): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let index = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const chunk = chunks[index];
        if (chunk === undefined) {
          controller.close();
          return;
        }
        index += 1;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: () => index };
}

export function postRequest(body: ReadableStream<Uint8Array> | Uint8Array | null, headers: Record<string, string>, url = 'http://test.local/v1/attachments'): Request {
  // `duplex` is required by undici for stream bodies and missing from the DOM typings.
  const init = { method: 'POST', body, headers, duplex: 'half' } as RequestInit;
  return new Request(url, init);
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return concat(chunks);
    chunks.push(value);
  }
}

export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}
