// The rules for a lease's arguments, stated once. Each `…Problem` function
// says what is wrong with a value ("must be …") or returns undefined; the two
// edges that take these values name the field their own way: the TS API
// (`checkAcquireOptions`, `checkTtlSeconds`: `ttlSeconds`, code
// `invalid_argument`) and the HTTP layer (http/params.ts: `ttl_seconds`,
// code `invalid_body`). Inside the engine, values arrive checked.
import { AttacheError } from './errors.js';
import { checkKey, checkNamespace } from './names.js';
import type { AcquireOptions, LeaseCredentials } from './types.js';

/** Longest lease (7 days): the one limit the TS API, HTTP and the OpenAPI document state. */
export const MAX_TTL_SECONDS = 7 * 24 * 3600;
/** Shortest lease (1 ms): expiries are whole milliseconds, so anything shorter would expire as it is granted. */
export const MIN_TTL_SECONDS = 0.001;
/** Longest lease `owner`, in characters (code points): it is stored with, and echoed on, every lease. */
export const MAX_OWNER_LENGTH = 256;
const TXN_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function ttlProblem(ttlSeconds: unknown): string | undefined {
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds * 1000 < 1 || ttlSeconds > MAX_TTL_SECONDS) {
    return `must be a number from ${MIN_TTL_SECONDS} (1 ms) to ${MAX_TTL_SECONDS} (7 days)`;
  }
  return undefined;
}

/** Non-empty (not only blanks), at most MAX_OWNER_LENGTH characters. */
export function ownerProblem(owner: unknown): string | undefined {
  if (typeof owner !== 'string' || owner.trim() === '') return 'must be a non-empty string';
  if ([...owner].length > MAX_OWNER_LENGTH) return `is longer than ${MAX_OWNER_LENGTH} characters`;
  return undefined;
}

/** -1: fail at once; 0: wait until free; > 0: wait up to this many seconds. */
export function blockSecondsProblem(blockSeconds: unknown): string | undefined {
  if (!Number.isSafeInteger(blockSeconds) || (blockSeconds as number) < -1) return 'must be an integer ≥ -1 (-1 no wait, 0 forever)';
  return undefined;
}

/** Caller-chosen transaction ids end up in blob paths, so they are kept path-safe. */
export function txnIdProblem(txnId: unknown): string | undefined {
  if (typeof txnId !== 'string' || !TXN_ID.test(txnId)) return 'must be 1–64 characters of A-Z a-z 0-9 _ -';
  return undefined;
}

function refuse(field: string, problem: string | undefined): void {
  if (problem !== undefined) throw new AttacheError('invalid_argument', `${field} ${problem}`);
}

/** TS API: a lease TTL in seconds → milliseconds. */
export function checkTtlSeconds(ttlSeconds: unknown): number {
  refuse('ttlSeconds', ttlProblem(ttlSeconds));
  return (ttlSeconds as number) * 1000;
}

/** TS API: a lease owner. */
export function checkOwner(owner: unknown): string {
  refuse('owner', ownerProblem(owner));
  return owner as string;
}

/** Lease credentials whose namespace and key have been checked (namespace defaulted). */
export interface CheckedCredentials extends LeaseCredentials {
  namespace: string;
}

/** An acquire request as the engine takes it: every field checked, the TTL in milliseconds. */
export interface CheckedAcquire {
  namespace: string;
  key: string;
  ttlMs: number;
  owner: string;
  blockSeconds: number;
  txnId: string | undefined;
  signal: AbortSignal | undefined;
}

/** TS API edge of `acquire`, in the order HTTP checks the same fields. */
export function checkAcquireOptions(options: AcquireOptions): CheckedAcquire {
  const namespace = checkNamespace(options.namespace);
  const key = checkKey(options.key);
  const ttlMs = checkTtlSeconds(options.ttlSeconds);
  const owner = checkOwner(options.owner);
  const blockSeconds = options.blockSeconds ?? -1;
  refuse('blockSeconds', blockSecondsProblem(blockSeconds));
  if (options.txnId !== undefined) refuse('txnId', txnIdProblem(options.txnId));
  return { namespace, key, ttlMs, owner, blockSeconds, txnId: options.txnId, signal: options.signal };
}

/** TS API edge of `store.lease(credentials)`. */
export function checkCredentials(credentials: LeaseCredentials): CheckedCredentials {
  return { ...credentials, namespace: checkNamespace(credentials.namespace), key: checkKey(credentials.key) };
}
