// Request bodies the contract sends: multipart envelopes built byte by byte,
// digests, and uploads over `node:http` that a test can cut off half-way
// (fetch cannot destroy its socket at a chosen byte).
import { createHash } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';

const encoder = new TextEncoder();

export const BOUNDARY = 'xYzBoundary42';
export const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

export interface FormPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: string | Uint8Array;
}

export function bytes(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text);
}

export function concat(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** The head of one part: boundary line, headers and the blank line. */
export function partHead(part: Omit<FormPart, 'data'>, boundary = BOUNDARY): Uint8Array<ArrayBuffer> {
  let disposition = `form-data; name="${part.name}"`;
  if (part.filename !== undefined) disposition += `; filename="${part.filename}"`;
  let head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n`;
  if (part.contentType !== undefined) head += `Content-Type: ${part.contentType}\r\n`;
  return bytes(`${head}\r\n`);
}

/** A multipart/form-data body, byte for byte as a browser would send it. */
export function multipartBody(parts: readonly FormPart[], boundary = BOUNDARY): Uint8Array<ArrayBuffer> {
  const chunks: Uint8Array[] = [];
  for (const part of parts) {
    chunks.push(partHead(part, boundary));
    chunks.push(typeof part.data === 'string' ? bytes(part.data) : part.data);
    chunks.push(bytes('\r\n'));
  }
  chunks.push(bytes(`--${boundary}--\r\n`));
  return concat(chunks);
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256Base64(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('base64');
}

/** `size` bytes of a repeating, non-constant pattern. */
export function patternBytes(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let index = 0; index < size; index++) out[index] = (index * 31 + 7) & 0xff;
  return out;
}

export interface StreamingUpload {
  request: ClientRequest;
  /** Writes a chunk and waits until the socket took it. */
  write(chunk: Uint8Array): Promise<void>;
  /** Ends the body and resolves with the answer. */
  finish(): Promise<{ status: number; body: string }>;
  /** Drops the connection as a crashed or impatient client would. */
  destroy(): void;
}

/**
 * Starts a POST whose body the test writes piece by piece. Without
 * `contentLength` the body is sent chunked, so the server cannot tell a
 * short body from a cut one by counting: only the broken connection says so.
 */
export function streamingUpload(url: string, headers: Record<string, string>, contentLength?: number): StreamingUpload {
  const allHeaders: Record<string, string> = { ...headers };
  if (contentLength !== undefined) allHeaders['Content-Length'] = String(contentLength);
  const request = httpRequest(url, { method: 'POST', headers: allHeaders });
  // After destroy() the request reports the reset; the test expects that.
  let destroyed = false;
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request.on('response', resolve);
    request.on('error', (error) => {
      if (!destroyed) reject(error);
    });
  });
  response.catch(() => {});
  request.flushHeaders();
  return {
    request,
    write: (chunk) =>
      new Promise<void>((resolve, reject) => {
        request.write(chunk, (error) => (error ? reject(error) : resolve()));
      }),
    finish: async () => {
      request.end();
      const answer = await response;
      const chunks: Buffer[] = [];
      for await (const chunk of answer) chunks.push(chunk as Buffer);
      return { status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
    },
    destroy: () => {
      destroyed = true;
      request.destroy();
    },
  };
}
