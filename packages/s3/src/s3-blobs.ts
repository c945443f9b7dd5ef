// `BlobStore` on S3-compatible object storage (AWS S3, Cloudflare R2, MinIO).
//
// Every blob is the object `${prefix}${path}` in one bucket. `put` streams
// through a multipart upload with bounded memory (partSize × (queueSize + 1)
// whatever the object size, see multipart-upload.ts); an object appears only when its upload
// completes, so readers see the old blob or the new one, never a partial one.
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { AttacheError, checkByteRange, checkBlobPath, emptyStream, type BlobInfo, type BlobStore, type ByteRange } from '@attache/core';
import { isMissingKey, toStoreError } from './errors.js';
import { copySource, MIN_PART_BYTES, multipartCopy } from './multipart-copy.js';
import { uploadStream } from './multipart-upload.js';
import { responseStream, sourceChunks } from './streams.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface S3BlobsOptions {
  bucket: string;
  /** Prepended to every blob path to form the object key; empty, or ending with "/" (e.g. "attache/"). */
  prefix?: string;
  /**
   * A client you configured yourself; the store never destroys it. When
   * given, the connection options below must be left out.
   */
  client?: S3Client;
  /** For S3-compatible services: MinIO `http://localhost:9000`, R2 `https://<account>.r2.cloudflarestorage.com`. */
  endpoint?: string;
  /** AWS region; R2 wants "auto". Default: the SDK's chain (AWS_REGION, ~/.aws/config). */
  region?: string;
  /** Default: the SDK's chain (environment, ~/.aws, instance role). */
  credentials?: S3ClientConfig['credentials'];
  /** `bucket` in the path instead of the host name; MinIO and most self-hosted servers need it. */
  forcePathStyle?: boolean;
  /** Attempts per request including the first (SDK default 3). */
  maxAttempts?: number;
  /** Bytes per uploaded part, at least 5 MiB. Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded concurrently per `put`. Default 3. */
  queueSize?: number;
  /** Objects larger than this are copied with UploadPartCopy instead of CopyObject. Default (and maximum) 5 GiB. */
  multipartCopyThreshold?: number;
  /** Part size of multipart copies (server-side, costs no memory here). Default 512 MiB. */
  copyPartSize?: number;
  /** Keys per ListObjectsV2 page. Default 1000 (S3's maximum); some S3-compatible servers cope better with less. */
  listPageSize?: number;
  /**
   * Seconds a blob outlives the last row that pointed at it before the
   * sweeper deletes it, for services that may cut a download of an object
   * deleted mid-stream (R2 through its S3 API: set 60). Default 0: AWS S3
   * and Ceph's radosgw finish a GET already under way, so blobs go at once.
   */
  deleteGraceSeconds?: number;
}

export function s3Blobs(options: S3BlobsOptions): BlobStore {
  const { bucket } = options;
  const prefix = options.prefix ?? '';
  const partSize = options.partSize ?? 8 * MiB;
  const queueSize = options.queueSize ?? 3;
  const multipartCopyThreshold = Math.min(options.multipartCopyThreshold ?? 5 * GiB, 5 * GiB);
  const copyPartSize = options.copyPartSize ?? 512 * MiB;
  const listPageSize = options.listPageSize ?? 1000;
  checkOptions(options, prefix, partSize, queueSize);

  const ownsClient = options.client === undefined;
  const client = options.client ?? createClient(options);
  const keyOf = (path: string) => prefix + checkBlobPath(path);

  async function put(
    path: string,
    body: ReadableStream<Uint8Array>,
    putOptions: { signal?: AbortSignal } = {},
  ): Promise<{ size: number }> {
    const { signal } = putOptions;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    // Cancelling the reader settles a pending read, so the upload stops pulling at once.
    const onAbort = () => void reader?.cancel(signal?.reason).catch(() => {});
    try {
      reader = body.getReader();
      const key = keyOf(path);
      if (signal?.aborted) throw signal.reason;
      signal?.addEventListener('abort', onAbort, { once: true });

      const size = await uploadStream({
        client,
        bucket,
        key,
        chunks: sourceChunks(reader, signal),
        partSize,
        queueSize,
      });
      return { size };
    } catch (error) {
      // Tell the producer to stop; a no-op when the stream itself errored.
      await reader?.cancel(error).catch(() => {});
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      reader?.releaseLock();
    }
  }

  async function get(path: string, range?: ByteRange): Promise<ReadableStream<Uint8Array> | undefined> {
    const key = keyOf(path);
    if (range !== undefined) checkByteRange(range);
    let response;
    try {
      response = await client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          Range: range === undefined ? undefined : `bytes=${range.start}-${range.end}`,
        }),
      );
    } catch (error) {
      if (isMissingKey(error)) return undefined;
      // 416: the range starts at or beyond the end (any range of an empty object).
      if (range !== undefined && (error as { name?: unknown }).name === 'InvalidRange') return emptyStream();
      throw toStoreError(error, 'GetObject');
    }
    const body = response.Body;
    if (body === undefined) return emptyStream();
    const nodeBody = body instanceof Readable ? body : Readable.fromWeb(body.transformToWebStream() as never); // Web → Node stream types differ only nominally
    let limit = Number.MAX_SAFE_INTEGER;
    if (range !== undefined) {
      const served = parseContentRange(response.ContentRange);
      if (served === undefined || served.start !== range.start) {
        nodeBody.destroy();
        throw new Error(`S3 answered a range request for ${range.start}-${range.end} with ${response.ContentRange ?? 'the whole object'}`);
      }
      limit = range.end - range.start + 1;
    }
    return responseStream(nodeBody, limit);
  }

  async function stat(path: string): Promise<BlobInfo | undefined> {
    const key = keyOf(path);
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { path, size: head.ContentLength ?? 0, modifiedAt: head.LastModified?.getTime() };
    } catch (error) {
      if (isMissingKey(error)) return undefined;
      throw toStoreError(error, 'HeadObject');
    }
  }

  async function copy(from: string, to: string): Promise<void> {
    const sourceKey = keyOf(from);
    const targetKey = keyOf(to);
    const missing = (cause: unknown) => new AttacheError('not_found', `blob "${from}" does not exist`, { cause });
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: sourceKey }));
      const size = head.ContentLength ?? 0;
      if (size <= multipartCopyThreshold) {
        await client.send(
          new CopyObjectCommand({ Bucket: bucket, Key: targetKey, CopySource: copySource(bucket, sourceKey) }),
        );
        return;
      }
      await multipartCopy({
        client,
        bucket,
        sourceKey,
        targetKey,
        size,
        sourceETag: head.ETag,
        partBytes: copyPartSize,
        concurrency: queueSize,
      });
    } catch (error) {
      if (isMissingKey(error)) throw missing(error);
      throw toStoreError(error, 'copy');
    }
  }

  async function deleteBlob(path: string): Promise<void> {
    const key = keyOf(path);
    try {
      // S3 answers 204 for a missing key too.
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      if (isMissingKey(error)) return;
      throw toStoreError(error, 'DeleteObject');
    }
  }

  async function* list(listPrefix: string): AsyncIterable<BlobInfo> {
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix + listPrefix,
            ContinuationToken: continuationToken,
            MaxKeys: listPageSize,
          }),
        );
      } catch (error) {
        throw toStoreError(error, 'ListObjectsV2');
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(prefix)) continue;
        const path = object.Key.slice(prefix.length);
        // Objects other tools put in the bucket ("folder/" markers, "a//b") are not blobs.
        if (!isBlobPath(path)) continue;
        yield { path, size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  async function close(): Promise<void> {
    if (ownsClient) client.destroy();
  }

  return { put, get, stat, copy, delete: deleteBlob, list, close, deleteGraceSeconds: options.deleteGraceSeconds ?? 0 };
}

function createClient(options: S3BlobsOptions): S3Client {
  return new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    credentials: options.credentials,
    forcePathStyle: options.forcePathStyle,
    maxAttempts: options.maxAttempts,
    // Since SDK 3.729 the default (WHEN_SUPPORTED) sends streamed bodies as
    // aws-chunked with a trailing CRC32. Ceph's radosgw 16.2 refuses that
    // framing (411 MissingContentLength), emulators have stored it as object
    // content, and R2, MinIO and other S3-compatible services have rejected
    // or mishandled it in various versions. Integrity of attachments is
    // checked by the engine (CRC-32 + SHA-256) anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function checkOptions(options: S3BlobsOptions, prefix: string, partSize: number, queueSize: number): void {
  if (typeof options.bucket !== 'string' || options.bucket === '') throw new TypeError('s3Blobs: `bucket` is required');
  if (prefix !== '' && (!prefix.endsWith('/') || !isBlobPath(prefix.slice(0, -1)))) {
    // "tenant" would also match "tenant2/…" in listings; "tenant/" cannot.
    throw new TypeError(`s3Blobs: \`prefix\` must be empty or a path ending with "/", got ${JSON.stringify(prefix)}`);
  }
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_BYTES) {
    throw new TypeError(`s3Blobs: \`partSize\` must be an integer of at least 5 MiB (S3's minimum part size)`);
  }
  if (!Number.isSafeInteger(queueSize) || queueSize < 1) throw new TypeError('s3Blobs: `queueSize` must be at least 1');
  if (options.deleteGraceSeconds !== undefined && !(options.deleteGraceSeconds >= 0)) {
    throw new TypeError('s3Blobs: `deleteGraceSeconds` must be a number ≥ 0');
  }
  if (options.client !== undefined) {
    const conflicting = (['endpoint', 'region', 'credentials', 'forcePathStyle', 'maxAttempts'] as const).filter(
      (name) => options[name] !== undefined,
    );
    if (conflicting.length > 0) {
      throw new TypeError(`s3Blobs: configure ${conflicting.join(', ')} on the client you pass, not beside it`);
    }
  }
}

function isBlobPath(path: string): boolean {
  try {
    checkBlobPath(path);
    return true;
  } catch {
    return false;
  }
}


/** `bytes a-b/size` → {start: a, end: b}. */
function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  const match = header === undefined ? null : /^bytes (\d+)-(\d+)\//.exec(header);
  return match === null ? undefined : { start: Number(match[1]), end: Number(match[2]) };
}
