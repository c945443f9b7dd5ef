// Streams a body of unknown length into one S3 object with memory bounded by
// a fixed pool of part buffers: `queueSize` parts in flight plus the one
// being filled, each `partSize` bytes, allocated once per upload and reused.
// @aws-sdk/lib-storage's `Upload` concatenates the chunks of every part into a
// fresh buffer and keeps the tail of the previous one alive, so its peak grew
// with garbage (58–98 MiB at 256 MiB) instead of staying at the pool's size.
//
// A body shorter than one part never allocates the pool: it is sent with one
// PutObject. The object appears only when the upload completes; on any
// failure the parts in flight are awaited and the multipart upload aborted,
// so nothing is left behind, and the source's own error is what rejects.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { AttacheError } from '@attache/core';
import { toStoreError } from './errors.js';

/** S3's limit on the parts of one multipart upload. */
export const MAX_PARTS = 10_000;

export interface UploadStreamOptions {
  client: S3Client;
  bucket: string;
  key: string;
  chunks: AsyncIterable<Uint8Array>;
  partSize: number;
  queueSize: number;
}

/** Uploads every chunk to `key`; resolves with the byte count once the object exists. */
export async function uploadStream(options: UploadStreamOptions): Promise<number> {
  const upload = new PooledMultipartUpload(options);
  return upload.run(options.chunks);
}

class PooledMultipartUpload {
  readonly #options: UploadStreamOptions;
  /** Chunks before the first part is full: a small body goes out as one PutObject. */
  #head: Uint8Array[] = [];
  #headBytes = 0;
  #uploadId: string | undefined;
  #buffers: Buffer[] = [];
  #allocated = 0;
  #current: Buffer | undefined;
  #filled = 0;
  #nextPartNumber = 1;
  readonly #completed: CompletedPart[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #partFailure: { error: unknown } | undefined;

  constructor(options: UploadStreamOptions) {
    this.#options = options;
  }

  async run(chunks: AsyncIterable<Uint8Array>): Promise<number> {
    let size = 0;
    try {
      for await (const chunk of chunks) {
        size += chunk.byteLength;
        await this.#append(chunk);
      }
      if (this.#uploadId === undefined) {
        await this.#putWhole();
        return size;
      }
      if (this.#filled > 0) await this.#sendCurrent();
      await this.#settle();
      await this.#complete();
      return size;
    } catch (error) {
      // Parts in flight are awaited, not cancelled: a part whose body the
      // server already has could still land after AbortMultipartUpload and
      // stay, invisible and billed, in the bucket.
      await this.#settle().catch(() => {});
      await this.#abort();
      throw error;
    }
  }

  async #append(chunk: Uint8Array): Promise<void> {
    const { partSize } = this.#options;
    if (this.#uploadId === undefined && this.#headBytes + chunk.byteLength <= partSize) {
      this.#head.push(chunk);
      this.#headBytes += chunk.byteLength;
      return;
    }
    if (this.#uploadId === undefined) {
      await this.#start();
      const head = this.#head;
      this.#head = [];
      this.#headBytes = 0;
      for (const earlier of head) await this.#copyIntoParts(earlier);
    }
    await this.#copyIntoParts(chunk);
  }

  async #copyIntoParts(chunk: Uint8Array): Promise<void> {
    const { partSize } = this.#options;
    let offset = 0;
    while (offset < chunk.byteLength) {
      this.#current ??= await this.#takeBuffer();
      const count = Math.min(partSize - this.#filled, chunk.byteLength - offset);
      this.#current.set(chunk.subarray(offset, offset + count), this.#filled);
      this.#filled += count;
      offset += count;
      if (this.#filled === partSize) await this.#sendCurrent();
    }
  }

  async #takeBuffer(): Promise<Buffer> {
    const { partSize, queueSize } = this.#options;
    while (this.#buffers.length === 0 && this.#allocated > queueSize) await this.#oneSettled();
    const reused = this.#buffers.pop();
    if (reused !== undefined) return reused;
    this.#allocated += 1;
    // Unpooled: each buffer is written whole before it is read.
    return Buffer.allocUnsafeSlow(partSize);
  }

  async #sendCurrent(): Promise<void> {
    const { queueSize } = this.#options;
    while (this.#inFlight.size >= queueSize) await this.#oneSettled();
    const buffer = this.#current!;
    const body = buffer.subarray(0, this.#filled);
    this.#current = undefined;
    this.#filled = 0;
    const partNumber = this.#nextPartNumber++;
    if (partNumber > MAX_PARTS) {
      throw new AttacheError(
        'attachment_too_large',
        `an S3 upload has at most ${MAX_PARTS} parts of ${this.#options.partSize} bytes; raise partSize for larger attachments`,
      );
    }
    const sent = this.#sendPart(partNumber, body).finally(() => {
      this.#inFlight.delete(sent);
      this.#buffers.push(buffer);
    });
    this.#inFlight.add(sent);
  }

  async #sendPart(partNumber: number, body: Buffer): Promise<void> {
    const { client, bucket, key } = this.#options;
    try {
      const answer = await client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: this.#uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.byteLength,
        }),
      );
      if (answer.ETag === undefined) throw new Error(`S3 answered UploadPart ${partNumber} without an ETag`);
      this.#completed.push({ PartNumber: partNumber, ETag: answer.ETag });
    } catch (error) {
      // Recorded, not thrown: the loop that fills parts rethrows it at its next step.
      this.#partFailure ??= { error: toStoreError(error, 'UploadPart') };
    }
  }

  /** Waits until one part in flight has finished; rethrows a part's failure. */
  async #oneSettled(): Promise<void> {
    if (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    if (this.#partFailure !== undefined) throw this.#partFailure.error;
  }

  async #settle(): Promise<void> {
    await Promise.all(this.#inFlight);
    if (this.#partFailure !== undefined) throw this.#partFailure.error;
  }

  async #start(): Promise<void> {
    const { client, bucket, key } = this.#options;
    try {
      const answer = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      if (answer.UploadId === undefined) throw new Error('S3 answered CreateMultipartUpload without an UploadId');
      this.#uploadId = answer.UploadId;
    } catch (error) {
      throw toStoreError(error, 'CreateMultipartUpload');
    }
  }

  async #putWhole(): Promise<void> {
    const { client, bucket, key } = this.#options;
    const body = this.#head.length === 1 ? this.#head[0]! : Buffer.concat(this.#head, this.#headBytes);
    this.#head = [];
    try {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.byteLength }),
      );
    } catch (error) {
      throw toStoreError(error, 'PutObject');
    }
  }

  async #complete(): Promise<void> {
    const { client, bucket, key } = this.#options;
    const parts = [...this.#completed].sort((a, b) => a.PartNumber! - b.PartNumber!);
    try {
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: this.#uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (error) {
      throw toStoreError(error, 'CompleteMultipartUpload');
    }
  }

  async #abort(): Promise<void> {
    const uploadId = this.#uploadId;
    if (uploadId === undefined) return;
    const { client, bucket, key } = this.#options;
    // Best effort: a bucket lifecycle rule for incomplete uploads (README) is
    // the backstop when storage is down at this moment.
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => {});
  }
}
