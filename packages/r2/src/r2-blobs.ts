// `BlobStore` on a Cloudflare R2 bucket through its Worker binding (not the
// S3 API): the blob store of attache on Workers. Every blob is the object
// `${prefix}${path}`.
//
// R2's binding takes a stream only when its length is known, and a multipart
// upload only with parts of one size (the last may be shorter), so `put`
// fills fixed-size parts: a body shorter than one part goes out with one
// `put`, a longer one as a multipart upload with at most `queueSize` parts in
// flight — memory is partSize × (queueSize + 1) whatever the size. An object
// appears only when its upload completes; on failure the upload is aborted.
// R2 has no server-side copy: `copy` streams the object into a new `put`.
import { AttacheError, checkByteRange, checkBlobPath, concatBytes, emptyStream, type BlobInfo, type BlobStore, type ByteRange } from '@attache/core';

const MiB = 1024 * 1024;

/** R2's smallest part (all parts but the last). */
export const MIN_PART_BYTES = 5 * MiB;

/** The part of an `R2Object` this store reads. */
export interface R2ObjectLike {
  readonly size: number;
  readonly uploaded: Date;
  readonly key: string;
}

/** The part of an `R2ObjectBody` this store reads. */
export interface R2ObjectBodyLike extends R2ObjectLike {
  readonly body: ReadableStream<Uint8Array>;
}

export interface R2UploadedPartLike {
  partNumber: number;
  etag: string;
}

export interface R2MultipartUploadLike {
  uploadPart(partNumber: number, value: Uint8Array): Promise<R2UploadedPartLike>;
  complete(parts: R2UploadedPartLike[]): Promise<unknown>;
  abort(): Promise<void>;
}

/** The part of an `R2Bucket` binding this store uses (typed here, so it builds without Workers' types). */
export interface R2BucketLike {
  head(key: string): Promise<R2ObjectLike | null>;
  get(key: string, options?: { range?: { offset: number; length: number } }): Promise<R2ObjectBodyLike | null>;
  put(key: string, value: Uint8Array | ReadableStream<Uint8Array>): Promise<unknown>;
  delete(key: string): Promise<void>;
  list(options: { prefix: string; cursor?: string; limit?: number }): Promise<{
    objects: R2ObjectLike[];
    truncated: boolean;
    cursor?: string;
  }>;
  createMultipartUpload(key: string): Promise<R2MultipartUploadLike>;
}

export interface R2BlobsOptions {
  /** The bucket binding (`env.BUCKET`). */
  bucket: R2BucketLike;
  /** Prepended to every blob path; empty, or ending with "/". */
  prefix?: string;
  /** Bytes per part of a multipart upload, at least 5 MiB. Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded concurrently per `put`. Default 2. */
  queueSize?: number;
  /**
   * Seconds a blob outlives the last row that pointed at it, so downloads
   * already streaming it finish: R2 (workerd) cuts a read of a deleted
   * object mid-stream. The sweeper deletes such garbage once this old.
   * Default 60; 0 deletes at once.
   */
  deleteGraceSeconds?: number;
}

/** Long enough for a download already under way to finish in all but pathological cases. */
export const R2_DEFAULT_DELETE_GRACE_SECONDS = 60;

export function r2Blobs(options: R2BlobsOptions): BlobStore {
  const { bucket } = options;
  const prefix = options.prefix ?? '';
  const partSize = options.partSize ?? 8 * MiB;
  const queueSize = options.queueSize ?? 2;
  if (prefix !== '' && !prefix.endsWith('/')) throw new TypeError('r2Blobs: `prefix` must be empty or end with "/"');
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_BYTES) {
    throw new TypeError('r2Blobs: `partSize` must be an integer of at least 5 MiB (R2’s minimum part size)');
  }
  if (!Number.isSafeInteger(queueSize) || queueSize < 1) throw new TypeError('r2Blobs: `queueSize` must be at least 1');
  const deleteGraceSeconds = options.deleteGraceSeconds ?? R2_DEFAULT_DELETE_GRACE_SECONDS;
  if (!(deleteGraceSeconds >= 0)) throw new TypeError('r2Blobs: `deleteGraceSeconds` must be a number ≥ 0');
  const keyOf = (path: string) => prefix + checkBlobPath(path);

  async function put(
    path: string,
    body: ReadableStream<Uint8Array>,
    putOptions: { signal?: AbortSignal } = {},
  ): Promise<{ size: number }> {
    const { signal } = putOptions;
    const key = keyOf(path);
    const reader = body.getReader();
    const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
    let multipart: R2MultipartUploadLike | undefined;
    const inFlight = new Set<Promise<void>>();
    const parts: R2UploadedPartLike[] = [];
    let partFailure: { error: unknown } | undefined;
    const throwPartFailure = () => {
      if (partFailure !== undefined) throw partFailure.error;
    };
    try {
      if (signal?.aborted) throw signal.reason;
      signal?.addEventListener('abort', onAbort, { once: true });
      // The first part's chunks are kept as they come: a body that ends
      // within one part is one `put`, without a part-sized buffer.
      let head: Uint8Array[] = [];
      let headBytes = 0;
      let inHead = true;
      let part: Uint8Array | undefined;
      let filled = 0;
      let size = 0;
      let partNumber = 0;
      const sendPart = async (bytes: Uint8Array) => {
        multipart ??= await bucket.createMultipartUpload(key);
        while (inFlight.size >= queueSize) await Promise.race(inFlight);
        throwPartFailure();
        const sent: Promise<void> = multipart
          .uploadPart(++partNumber, bytes)
          .then(
            (uploaded) => void parts.push(uploaded),
            (error: unknown) => void (partFailure ??= { error }),
          )
          .finally(() => inFlight.delete(sent));
        inFlight.add(sent);
      };
      const copyIntoParts = async (chunk: Uint8Array) => {
        let offset = 0;
        while (offset < chunk.byteLength) {
          part ??= new Uint8Array(partSize);
          const count = Math.min(partSize - filled, chunk.byteLength - offset);
          part.set(chunk.subarray(offset, offset + count), filled);
          filled += count;
          offset += count;
          if (filled === partSize) {
            await sendPart(part);
            part = undefined;
            filled = 0;
          }
        }
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (signal?.aborted) throw signal.reason;
        if (done) break;
        if (!(value instanceof Uint8Array)) throw new TypeError('blob stream chunks must be Uint8Array');
        size += value.byteLength;
        if (inHead && headBytes + value.byteLength <= partSize) {
          head.push(value);
          headBytes += value.byteLength;
          continue;
        }
        if (inHead) {
          inHead = false;
          for (const earlier of head) await copyIntoParts(earlier);
          head = [];
        }
        await copyIntoParts(value);
      }
      if (inHead) {
        await bucket.put(key, concatBytes(head, headBytes));
        return { size };
      }
      if (part !== undefined && filled > 0) await sendPart(part.subarray(0, filled));
      await Promise.all(inFlight);
      throwPartFailure();
      parts.sort((a, b) => a.partNumber - b.partNumber);
      // More than one part's bytes arrived, so the multipart upload exists.
      await multipart!.complete(parts);
      return { size };
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      await Promise.allSettled(inFlight);
      await multipart?.abort().catch(() => {});
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      reader.releaseLock();
    }
  }

  async function get(path: string, range?: ByteRange): Promise<ReadableStream<Uint8Array> | undefined> {
    const key = keyOf(path);
    if (range !== undefined) checkByteRange(range);
    let object: R2ObjectBodyLike | null;
    try {
      object = await bucket.get(
        key,
        range === undefined ? undefined : { range: { offset: range.start, length: range.end - range.start + 1 } },
      );
    } catch (error) {
      // A range that starts at or beyond the end (R2 error 10039), as S3's 416.
      if (range !== undefined && /not satisfiable|10039/.test(String((error as { message?: unknown })?.message))) {
        return (await bucket.head(key)) === null ? undefined : emptyStream();
      }
      throw error;
    }
    return object === null ? undefined : object.body;
  }

  async function stat(path: string): Promise<BlobInfo | undefined> {
    const object = await bucket.head(keyOf(path));
    return object === null ? undefined : { path, size: object.size, modifiedAt: object.uploaded.getTime() };
  }

  async function copy(from: string, to: string): Promise<void> {
    checkBlobPath(to);
    const source = await bucket.get(keyOf(from));
    if (source === null) throw new AttacheError('not_found', `blob "${from}" does not exist`);
    // Through `put`'s parts: the binding takes a stream only when it knows its
    // length, which a body read from R2 has in workerd but not everywhere.
    await put(to, source.body);
  }

  async function deleteBlob(path: string): Promise<void> {
    await bucket.delete(keyOf(path));
  }

  async function* list(listPrefix: string): AsyncIterable<BlobInfo> {
    let cursor: string | undefined;
    do {
      const page = await bucket.list({ prefix: prefix + listPrefix, cursor });
      for (const object of page.objects) {
        if (!object.key.startsWith(prefix)) continue;
        yield { path: object.key.slice(prefix.length), size: object.size, modifiedAt: object.uploaded.getTime() };
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor !== undefined);
  }

  return { put, get, stat, copy, delete: deleteBlob, list, deleteGraceSeconds };
}


