// Server-side copy of objects too large for one CopyObject (S3 caps it at
// 5 GiB): a multipart upload whose parts are UploadPartCopy ranges of the
// source. No byte passes through this process. Every part is pinned to the
// source's ETag, and the ETag is checked again before the upload completes,
// so a source replaced mid-copy fails the copy instead of mixing two
// versions; a failed copy aborts the upload so no parts linger.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  type S3Client,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';

/** S3 limits: parts are 5 MiB to 5 GiB (the last may be smaller), at most 10,000 of them. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
const MAX_PARTS = 10_000;

export interface MultipartCopyInput {
  client: S3Client;
  bucket: string;
  sourceKey: string;
  targetKey: string;
  size: number;
  /** Pins every part to this version of the source. */
  sourceETag: string | undefined;
  /** Preferred part size; raised when the object would need more than 10,000 parts. */
  partBytes: number;
  concurrency: number;
}

/** The `x-amz-copy-source` value: bucket and URL-encoded key, slashes kept (some servers only `decodeURI` it). */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

export async function multipartCopy(input: MultipartCopyInput): Promise<void> {
  const { client, bucket, sourceKey, targetKey, size } = input;
  const partBytes = Math.min(
    MAX_PART_BYTES,
    Math.max(input.partBytes, MIN_PART_BYTES, Math.ceil(size / MAX_PARTS)),
  );
  const partCount = Math.max(1, Math.ceil(size / partBytes));

  const { UploadId: uploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: targetKey }));
  if (uploadId === undefined) throw new Error('S3 CreateMultipartUpload answered without an UploadId');

  try {
    const parts: CompletedPart[] = new Array(partCount);
    let nextPart = 0;
    let failed = false;
    // A fixed pool of workers, each taking the next part number; they stop
    // taking parts after any failure.
    const worker = async () => {
      for (let index = nextPart++; index < partCount && !failed; index = nextPart++) {
        const first = index * partBytes;
        const last = Math.min(first + partBytes, size) - 1;
        const result = await client.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: targetKey,
            UploadId: uploadId,
            PartNumber: index + 1,
            CopySource: copySource(bucket, sourceKey),
            CopySourceRange: `bytes=${first}-${last}`,
            CopySourceIfMatch: input.sourceETag,
          }),
        );
        const etag = result.CopyPartResult?.ETag;
        if (etag === undefined) throw new Error(`S3 UploadPartCopy answered part ${index + 1} without an ETag`);
        parts[index] = { PartNumber: index + 1, ETag: etag };
      }
    };
    const workers = Array.from({ length: Math.min(input.concurrency, partCount) }, () =>
      worker().catch((error: unknown) => {
        failed = true;
        throw error;
      }),
    );
    // Settle every worker before aborting: a part still in flight could
    // otherwise land after the abort and linger.
    const outcomes = await Promise.allSettled(workers);
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    // AWS S3 fails a part whose source no longer matches CopySourceIfMatch
    // (412), but Ceph's radosgw (16.2) ignores that header on UploadPartCopy.
    // Checking once more, after the last part and before the object appears,
    // holds the pin on both.
    if (input.sourceETag !== undefined) {
      const { ETag: current } = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: sourceKey }));
      if (current !== input.sourceETag) {
        throw new Error(`S3 object "${sourceKey}" changed during a multipart copy (ETag ${input.sourceETag} → ${current}); the copy was aborted`);
      }
    }
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: targetKey,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (error) {
    // Best effort: the copy's own error is what the caller needs to see.
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: targetKey, UploadId: uploadId }))
      .catch(() => {});
    throw error;
  }
}
