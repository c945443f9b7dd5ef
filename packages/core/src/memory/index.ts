// `@attache/core/memory`: in-memory ports, for tests and examples (nothing persists).
export { memoryMetadata } from './metadata.js';
export { memoryBlobs } from './blobs.js';
