export { fsBlobs } from './fs-blobs.js';
export type { FsBlobsOptions } from './fs-blobs.js';
