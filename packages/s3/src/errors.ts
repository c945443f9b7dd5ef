// Which S3 failures mean "storage is down, try again later". Only these become
// `AttacheError('unavailable')` (HTTP 503 + Retry-After); anything else (access
// denied, missing bucket, bad request) is a configuration or engine problem and
// is rethrown as is. The SDK has already retried by the time we see an error.
import { AttacheError } from '@attache/core';

const THROTTLING_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'BandwidthLimitExceeded',
]);

const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface ErrorFields {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function fields(error: unknown): ErrorFields {
  return typeof error === 'object' && error !== null ? (error as ErrorFields) : {};
}

export function httpStatusOf(error: unknown): number | undefined {
  const status = fields(error).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

export function errorNameOf(error: unknown): string | undefined {
  const name = fields(error).name;
  return typeof name === 'string' ? name : undefined;
}

/** Throttling, a 5xx answer, or a network failure (also when wrapped in `cause`). */
export function isUnavailable(error: unknown, depth = 0): boolean {
  if (depth > 4 || typeof error !== 'object' || error === null) return false;
  const { name, code, cause } = fields(error);
  const status = httpStatusOf(error);
  if (typeof name === 'string' && (THROTTLING_NAMES.has(name) || TRANSIENT_NAMES.has(name))) return true;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  if (status === 429 || (status !== undefined && status >= 500)) return true;
  // Node's AggregateError (happy eyeballs: IPv4 and IPv6 both refused) and wrapped causes.
  if (error instanceof AggregateError && error.errors.some((inner) => isUnavailable(inner, depth + 1))) return true;
  return isUnavailable(cause, depth + 1);
}

/** A 404 for a key (not for a missing bucket, which is a configuration error). */
export function isMissingKey(error: unknown): boolean {
  const name = errorNameOf(error);
  if (name === 'NoSuchKey' || name === 'NotFound') return true;
  return httpStatusOf(error) === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload';
}

/** Maps "storage is down" to `unavailable`; every other error passes through unchanged. */
export function toStoreError(error: unknown, operation: string): unknown {
  if (error instanceof AttacheError || !isUnavailable(error)) return error;
  const detail = error instanceof Error ? error.message || error.name : String(error);
  return new AttacheError('unavailable', `S3 ${operation} failed: ${detail}`, { retryAfterSeconds: 1, cause: error });
}
