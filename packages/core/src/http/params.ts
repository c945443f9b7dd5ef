// Query and header parsing for the attachment routes. Every check runs before
// the body is touched, in the order of API.md §3:
//   missing_key → missing_name → invalid_namespace → invalid_key / invalid_name
//   → missing_lease → missing_txn → missing_fencing_token / invalid_fencing_token
//   → invalid_max_bytes → (upload extras: content_type → invalid_content_type,
//   checksums → invalid_body / checksum_mismatch)
// An upload's own Content-Type is read before all of these (a malformed one
// is invalid_content_type): whether the body is multipart decides whether
// `name` is required.
// "validity" (key and name syntax) comes after the presence checks, so a
// request missing several things is told about the first missing one.
import { AttacheError } from '../errors.js';
import { blockSecondsProblem, ownerProblem, ttlProblem, txnIdProblem } from '../lease-rules.js';
import { checkKey, checkName, checkNamespace } from '../names.js';
import { formatMediaType, normalizeMediaType, parseMediaType, type MediaType } from '../media-type.js';
import type { AttachmentSelector, LeaseCredentials } from '../types.js';

export const LEASE_ID_HEADER = 'X-Lease-ID';
export const TXN_ID_HEADER = 'X-Txn-ID';
export const FENCING_TOKEN_HEADER = 'X-Fencing-Token';
export const CRC32_HEADER = 'X-Attachment-CRC32';

/** Query booleans: `true` or `1`; anything else (or absence) is false. */
export function queryBoolean(value: string | null): boolean {
  return value === 'true' || value === '1';
}

/** A query value, with the empty string treated as absent (`?name=` means no name). */
function queryValue(url: URL, name: string): string | undefined {
  const value = url.searchParams.get(name);
  return value === null || value === '' ? undefined : value;
}

export interface LeaseHeaderValues {
  leaseId: string;
  txnId: string;
  fencingToken: number;
}

export function hasLeaseHeaders(headers: Headers): boolean {
  return headers.has(LEASE_ID_HEADER) || headers.has(TXN_ID_HEADER) || headers.has(FENCING_TOKEN_HEADER);
}

/** The three lease headers, checked in the documented order. */
export function readLeaseHeaders(headers: Headers): LeaseHeaderValues {
  const leaseId = headers.get(LEASE_ID_HEADER);
  if (!leaseId) throw new AttacheError('missing_lease', `this call needs a lease: send ${LEASE_ID_HEADER}`);
  const txnId = headers.get(TXN_ID_HEADER);
  if (!txnId) throw new AttacheError('missing_txn', `send the lease's transaction id in ${TXN_ID_HEADER}`);
  return { leaseId, txnId, fencingToken: parseFencingToken(headers.get(FENCING_TOKEN_HEADER)) };
}

export function parseFencingToken(value: string | null): number {
  if (value === null || value === '') {
    throw new AttacheError('missing_fencing_token', `send the lease's fencing token in ${FENCING_TOKEN_HEADER}`);
  }
  const token = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(token)) {
    throw new AttacheError('invalid_fencing_token', `${FENCING_TOKEN_HEADER} must be a non-negative integer`);
  }
  return token;
}

export function parseMaxBytes(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const maxBytes = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(maxBytes)) {
    throw new AttacheError('invalid_max_bytes', 'max_bytes must be a non-negative integer');
  }
  return maxBytes;
}

// Attachment ids are UUIDs (v7). Anything else cannot name an attachment, so
// it is answered like an unknown id instead of reaching the metadata store.
const ATTACHMENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function checkAttachmentId(id: string): string {
  if (!ATTACHMENT_ID.test(id)) throw new AttacheError('attachment_not_found', 'no attachment has this id');
  return id.toLowerCase();
}

const FORM_ENCODINGS = new Set(['multipart/form-data', 'application/x-www-form-urlencoded']);

/**
 * A media type sent by the client (a query's `content_type`, a `Content-Type`
 * header), in canonical form. Anything but exactly one well-formed media type
 * is refused with `invalid_content_type`: a lenient reading is how
 * `image/png;,text/html` passed as an image.
 */
export function checkContentType(value: string, where: string): string {
  const normalized = normalizeMediaType(value);
  if (normalized === undefined) {
    throw new AttacheError(
      'invalid_content_type',
      `${where} must be one media type, type/subtype with optional ;name=value parameters (RFC 9110), at most 255 characters`,
    );
  }
  return normalized;
}

/** The request's own `Content-Type`, parsed strictly; absent or empty → undefined. */
export function requestMediaType(headers: Headers): MediaType | undefined {
  const value = headers.get('Content-Type');
  if (value === null || value.trim() === '') return undefined;
  return parseMediaType(checkContentType(value, 'Content-Type'));
}

/**
 * The content type of a raw upload: the query's, else the request's unless
 * it is a form encoding (that describes the envelope, not the file), else
 * `application/octet-stream` (API.md §2 "Resolved details"). Both arrive
 * checked; the result is canonical.
 */
export function resolveRawContentType(queryContentType: string | undefined, requestContentType: string | null | undefined): string {
  if (queryContentType !== undefined) return queryContentType;
  const fromRequest = requestContentType ? parseMediaType(requestContentType) : undefined;
  if (fromRequest && !FORM_ENCODINGS.has(fromRequest.essence)) return formatMediaType(fromRequest);
  return 'application/octet-stream';
}

/** `X-Attachment-CRC32`: 8 hex digits, any case → lowercase. */
export function parseCrc32Header(value: string | null): string | undefined {
  if (value === null) return undefined;
  if (!/^[0-9a-fA-F]{8}$/.test(value)) {
    throw new AttacheError('invalid_body', `${CRC32_HEADER} must be 8 hexadecimal digits`);
  }
  return value.toLowerCase();
}

/**
 * The SHA-256 of an RFC 9530 `Content-Digest` (`sha-256=:<base64>:`), as
 * lowercase hex. Other algorithms (`sha-512` included) are ignored, as RFC
 * 9530 lets a recipient do. Every sha-256 member is checked: a malformed one
 * is an error rather than silently skipping the integrity check the client
 * asked for, and two that differ can never both match the bytes, so they are
 * refused with `checksum_mismatch` before the body is read.
 */
export function parseContentDigestSha256(value: string | null): string | undefined {
  if (value === null) return undefined;
  let sha256: string | undefined;
  for (const member of value.split(',')) {
    const equals = member.indexOf('=');
    if (equals < 0) continue;
    if (member.slice(0, equals).trim().toLowerCase() !== 'sha-256') continue;
    // Structured-field parameters (`;foo=bar`) may follow the byte sequence.
    const item = member.slice(equals + 1).split(';', 1)[0]!.trim();
    const match = /^:([A-Za-z0-9+/]*={0,2}):$/.exec(item);
    const bytes = match ? decodeBase64(match[1]!) : undefined;
    if (bytes === undefined || bytes.length !== 32) {
      throw new AttacheError('invalid_body', 'Content-Digest sha-256 must be 32 bytes of base64 between colons');
    }
    const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
    if (sha256 !== undefined && hex !== sha256) {
      throw new AttacheError('checksum_mismatch', 'Content-Digest has two different sha-256 values; no body can match both');
    }
    sha256 = hex;
  }
  return sha256;
}

function decodeBase64(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text);
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** `Content-Length` of a raw upload, used as the expected size; absent or odd values are not an expectation. */
export function parseContentLength(value: string | null): number | undefined {
  if (value === null || !/^[0-9]+$/.test(value)) return undefined;
  const length = Number(value);
  return Number.isSafeInteger(length) ? length : undefined;
}

export interface Scope {
  namespace: string;
  key: string;
}

export interface UploadParams {
  /** Absent for the document face (no key, no lease headers). */
  scope?: Scope;
  /** Document face only: the `namespace` query parameter, when given. */
  documentNamespace?: string;
  credentials?: LeaseCredentials;
  multipart: boolean;
  /** Required for raw uploads; for multipart it names the first file part only. */
  name?: string;
  /** Document face, raw upload only: the id the caller chose (checked by the documents face). */
  documentId?: string;
  /** From the query; canonical. */
  contentType?: string;
  /** The request's own `Content-Type`, canonical (for a raw upload, the type when the query gives none). */
  requestContentType?: string;
  maxBytes?: number;
  preventOverwrite: boolean;
  /** Raw uploads only: they describe the request content, which for multipart is the envelope. */
  expectedSize?: number;
  expectedCrc32?: string;
  expectedSha256?: string;
}

/** `POST /attachments`: the keyed (lease) face or, without key and lease headers, the document face. */
export function parseUploadParams(request: Request, url: URL): UploadParams {
  const rawKey = queryValue(url, 'key');
  const leased = hasLeaseHeaders(request.headers);
  if (rawKey === undefined && leased) throw new AttacheError('missing_key', 'key is required with a lease');
  // Parsed first: whether the body is multipart decides what else is required.
  const requestType = requestMediaType(request.headers);
  const multipart = requestType?.essence === 'multipart/form-data';
  const rawName = queryValue(url, 'name');
  if (rawName === undefined && !multipart) throw new AttacheError('missing_name', 'name is required for a raw upload');
  const namespace = checkNamespace(queryValue(url, 'namespace'));
  const key = rawKey === undefined ? undefined : checkKey(rawKey);
  const name = rawName === undefined ? undefined : checkName(rawName);

  const params: UploadParams = { multipart, preventOverwrite: queryBoolean(url.searchParams.get('prevent_overwrite')) };
  if (name !== undefined) params.name = name;
  if (key !== undefined) {
    params.scope = { namespace, key };
    params.credentials = { namespace, key, ...readLeaseHeaders(request.headers) };
  } else if (queryValue(url, 'namespace') !== undefined) {
    params.documentNamespace = namespace;
  }
  const documentId = queryValue(url, 'id');
  if (documentId !== undefined) {
    // Only a new document takes a chosen id: a keyed upload's id is the server's, and a form may carry several files.
    if (key !== undefined) throw new AttacheError('invalid_query', 'id chooses the id of a new document; a keyed upload (key=) cannot choose one');
    if (multipart) throw new AttacheError('invalid_query', 'id chooses the id of one raw document upload, not of a form');
    params.documentId = documentId;
  }
  const maxBytes = parseMaxBytes(queryValue(url, 'max_bytes'));
  if (maxBytes !== undefined) params.maxBytes = maxBytes;

  const contentType = queryValue(url, 'content_type');
  if (contentType !== undefined) params.contentType = checkContentType(contentType, 'content_type');
  if (requestType !== undefined) params.requestContentType = formatMediaType(requestType);
  if (!multipart) {
    const expectedSize = parseContentLength(request.headers.get('Content-Length'));
    if (expectedSize !== undefined) params.expectedSize = expectedSize;
    const expectedCrc32 = parseCrc32Header(request.headers.get(CRC32_HEADER));
    if (expectedCrc32 !== undefined) params.expectedCrc32 = expectedCrc32;
    const expectedSha256 = parseContentDigestSha256(request.headers.get('Content-Digest'));
    if (expectedSha256 !== undefined) params.expectedSha256 = expectedSha256;
  }
  return params;
}

export interface ListParams {
  scope: Scope;
  /** Present when the caller reads through its lease (lease headers sent and not `public=true`). */
  credentials?: LeaseCredentials;
}

/** `GET /attachments` (lease optional) and `DELETE /attachments` (lease required). */
export function parseListParams(request: Request, url: URL, lease: 'optional' | 'required'): ListParams {
  const rawKey = queryValue(url, 'key');
  if (rawKey === undefined) throw new AttacheError('missing_key', 'key is required');
  const namespace = checkNamespace(queryValue(url, 'namespace'));
  const scope = { namespace, key: checkKey(rawKey) };
  if (!wantsLeaseRead(request, url, lease)) return { scope };
  return { scope, credentials: { ...scope, ...readLeaseHeaders(request.headers) } };
}

export interface SelectorParams {
  /** Absent for a read by id alone, which sees any committed attachment. */
  scope?: Scope;
  selector: AttachmentSelector;
  credentials?: LeaseCredentials;
}

/**
 * `GET|HEAD|DELETE /attachment`: `key` + `name` or `id`; reads also accept
 * `id` alone. When both `name` and `id` are given, `id` wins (it is exact).
 */
export function parseSelectorParams(request: Request, url: URL, lease: 'optional' | 'required'): SelectorParams {
  const rawKey = queryValue(url, 'key');
  const rawName = queryValue(url, 'name');
  const rawId = queryValue(url, 'id');
  const idAlone = rawKey === undefined && rawId !== undefined && lease === 'optional';
  if (rawKey === undefined && !idAlone) {
    if (rawName === undefined && rawId === undefined) throw new AttacheError('missing_name', 'name or id is required');
    throw new AttacheError('missing_key', 'key is required');
  }
  if (rawName === undefined && rawId === undefined) throw new AttacheError('missing_name', 'name or id is required');
  const namespace = checkNamespace(queryValue(url, 'namespace'));
  const key = rawKey === undefined ? undefined : checkKey(rawKey);
  const selector: AttachmentSelector =
    rawId !== undefined ? { id: checkAttachmentId(rawId) } : { name: checkName(rawName) };
  if (key === undefined) return { selector };
  const scope = { namespace, key };
  if (!wantsLeaseRead(request, url, lease)) return { scope, selector };
  return { scope, selector, credentials: { ...scope, ...readLeaseHeaders(request.headers) } };
}

function wantsLeaseRead(request: Request, url: URL, lease: 'optional' | 'required'): boolean {
  if (lease === 'required') return true;
  return !queryBoolean(url.searchParams.get('public')) && hasLeaseHeaders(request.headers);
}

// ── Lease calls: JSON bodies (API.md §2 "Leases") ──────────────────────────

export interface AcquireParams {
  namespace: string;
  key: string;
  owner: string;
  ttlSeconds: number;
  blockSeconds: number;
  txnId?: string;
}

export function parseAcquireBody(body: Record<string, unknown>): AcquireParams {
  const { namespace, key } = bodyScope(body);
  // The engine's rules (lease-rules.ts), under the body's field names.
  bodyField('owner', body.owner, ownerProblem);
  const owner = body.owner as string;
  const ttlSeconds = bodyTtl(body);
  let blockSeconds = -1;
  if (body.block_seconds !== undefined && body.block_seconds !== null) {
    bodyField('block_seconds', body.block_seconds, blockSecondsProblem);
    blockSeconds = body.block_seconds as number;
  }
  const params: AcquireParams = { namespace, key, owner, ttlSeconds, blockSeconds };
  if (body.txn_id !== undefined && body.txn_id !== null) {
    if (typeof body.txn_id !== 'string' || body.txn_id === '') {
      throw new AttacheError('invalid_body', 'txn_id must be a non-empty string');
    }
    bodyField('txn_id', body.txn_id, txnIdProblem);
    params.txnId = body.txn_id;
  }
  return params;
}

export interface KeepaliveParams {
  credentials: Required<LeaseCredentials> & { namespace: string };
  ttlSeconds: number;
}

/** Keepalive: lease and txn ids in the body (or, failing that, the lease headers); the fencing token in its header. */
export function parseKeepaliveBody(body: Record<string, unknown>, headers: Headers): KeepaliveParams {
  const credentials = bodyCredentials(body, headers);
  return { credentials, ttlSeconds: bodyTtl(body) };
}

export interface ReleaseParams {
  credentials: Required<LeaseCredentials> & { namespace: string };
  rollback: boolean;
}

export function parseReleaseBody(body: Record<string, unknown>, headers: Headers): ReleaseParams {
  const credentials = bodyCredentials(body, headers);
  if (body.rollback !== undefined && body.rollback !== null && typeof body.rollback !== 'boolean') {
    throw new AttacheError('invalid_body', 'rollback must be a boolean');
  }
  return { credentials, rollback: body.rollback === true };
}

/** `key` then `namespace`, in the same order as for queries: presence, namespace, then key syntax. */
function bodyScope(body: Record<string, unknown>): Scope {
  const { key, namespace } = body;
  if (key === undefined || key === null || key === '') throw new AttacheError('missing_key', 'key is required');
  if (namespace !== undefined && namespace !== null && typeof namespace !== 'string') {
    throw new AttacheError('invalid_namespace', 'namespace must be a string');
  }
  const checkedNamespace = checkNamespace(namespace);
  if (typeof key !== 'string') throw new AttacheError('invalid_key', 'key must be a string');
  return { namespace: checkedNamespace, key: checkKey(key) };
}

/** The engine's own rule (lease-rules.ts), checked here so it is reported in the documented order, as `invalid_body`. */
function bodyTtl(body: Record<string, unknown>): number {
  bodyField('ttl_seconds', body.ttl_seconds, ttlProblem);
  return body.ttl_seconds as number;
}

function bodyField(field: string, value: unknown, problemOf: (value: unknown) => string | undefined): void {
  const problem = problemOf(value);
  if (problem !== undefined) throw new AttacheError('invalid_body', `${field} ${problem}`);
}

function bodyCredentials(body: Record<string, unknown>, headers: Headers): KeepaliveParams['credentials'] {
  const { namespace, key } = bodyScope(body);
  const leaseId = bodyString(body, 'lease_id') ?? headers.get(LEASE_ID_HEADER);
  if (!leaseId) throw new AttacheError('missing_lease', 'lease_id is required');
  const txnId = bodyString(body, 'txn_id') ?? headers.get(TXN_ID_HEADER);
  if (!txnId) throw new AttacheError('missing_txn', 'txn_id is required');
  const fencingToken = parseFencingToken(headers.get(FENCING_TOKEN_HEADER));
  return { namespace, key, leaseId, txnId, fencingToken };
}

function bodyString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new AttacheError('invalid_body', `${field} must be a string`);
  return value;
}
