export * from './seed-interface.js';
export * from './errors.js';
export * from './ports.js';
export * from './types.js';
export { checkKey, checkName, checkNamespace, extensionOf, DEFAULT_NAMESPACE } from './names.js';
export { checkOwner, MAX_OWNER_LENGTH, MAX_TTL_SECONDS, MIN_TTL_SECONDS } from './lease-rules.js';
export { CRASH_POINTS, isCrashPoint, type CrashPoint, type CrashPointHook } from './crash-points.js';
export { createAttachmentStore, MAX_INLINE_BLOB_BYTES } from './store.js';
export { inlineSmallBlobs, type InlineBlobOptions } from './inline-blobs.js';
export { isAttachmentRef, parseAttachmentRef } from './refs.js';
export { Keyring, encryptedSize, SEGMENT_SIZE, type EncryptionOptions, type EncryptedObject, type CiphertextReader } from './crypto.js';
export { isUuidV7, newId } from './ids.js';
export { createDigest, digestImplementation, type Digests } from './hash.js';
export { committedBlobPath, rotatedBlobPath, isStagedPath, stagedBlobPath, stagedTxnOf, STAGING_PREFIX } from './paths.js';
export { checkBlobPath } from './paths.js';
export { checkByteRange } from './byte-range.js';
export { concatBytes, emptyStream, readUpTo } from './streams.js';
export { sharedSync, type SharedSync, type SharedSyncTarget } from './shared-sync.js';
export { formatMediaType, normalizeMediaType, parseMediaType, MAX_MEDIA_TYPE_LENGTH, type MediaType } from './media-type.js';
// The subpath entries, re-exported so `@attache/core` alone still offers
// everything (API.md §0); `@attache/core/http` and `@attache/core/memory`
// load only what they name.
export * from './http/index.js';
export * from './memory/index.js';
