export { createClient, type AttacheClient, type ClientAcquireOptions, type ClientOptions, type ReadSelector } from './client.js';
export type { ClientAttachOptions, ClientLease } from './lease.js';
export type { ProgressCallback, UploadProgress } from './body.js';
export type { FetchFunction, RetryPolicy } from './transport.js';
// The same class core throws in-process, so `isAttacheError` works on both.
export { AttacheError, isAttacheError, type ErrorCode } from '@attache/core';
