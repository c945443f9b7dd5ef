export {
  MIN_PART_BYTES,
  R2_DEFAULT_DELETE_GRACE_SECONDS,
  r2Blobs,
  type R2BlobsOptions,
  type R2BucketLike,
  type R2MultipartUploadLike,
  type R2ObjectBodyLike,
  type R2ObjectLike,
  type R2UploadedPartLike,
} from './r2-blobs.js';
