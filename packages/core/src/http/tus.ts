// The tus 1.0 resumable upload protocol (https://tus.io/protocols/resumable-upload)
// under `<base>/uploads`: core plus the creation, creation-with-upload,
// termination, checksum and expiration extensions. The bytes and their state
// are the engine's (resumable.ts); this module only speaks the protocol.
//
//   OPTIONS /uploads[/<id>]  discovery (no Tus-Resumable needed)
//   POST    /uploads         create (Upload-Length, Upload-Metadata; lease headers + ?namespace=&key= for the lease face)
//   HEAD    /uploads/<id>    where the upload stands (Upload-Offset)
//   PATCH   /uploads/<id>    append at Upload-Offset
//   DELETE  /uploads/<id>    terminate
//
// Errors are the API's JSON errors (API.md §3) plus the codes tus asks for:
// 412 unsupported_tus_version, 409 offset_mismatch, 415
// unsupported_media_type, 460 upload_checksum_mismatch.
import { AttacheError } from '../errors.js';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from '../hash.js';
import { looksLikeId } from '../ids.js';
import { checkKey, checkName, checkNamespace } from '../names.js';
import { requestBodyOf } from '../streams.js';
import type { AppendUploadOptions, CreateUploadOptions, UploadBinding, UploadState } from '../types.js';
import { errorResponse } from './errors.js';
import { checkContentType, hasLeaseHeaders, readLeaseHeaders } from './params.js';
import type { RouteContext } from './routes.js';

export const TUS_VERSION = '1.0.0';
export const TUS_EXTENSIONS = ['creation', 'creation-with-upload', 'termination', 'checksum', 'expiration'] as const;
const OFFSET_CONTENT_TYPE = 'application/offset+octet-stream';
/** Longest `Upload-Metadata` kept (it is stored and echoed). */
const MAX_METADATA_LENGTH = 4096;
export const UPLOADS_PATH = '/uploads';
export const UPLOAD_QUERY = ['namespace', 'key'] as const;

export type TusMethod = 'OPTIONS' | 'POST' | 'HEAD' | 'PATCH' | 'DELETE';
const COLLECTION_METHODS: readonly TusMethod[] = ['OPTIONS', 'POST'];
const MEMBER_METHODS: readonly TusMethod[] = ['OPTIONS', 'HEAD', 'PATCH', 'DELETE'];

/** The tus routes as OpenAPI names them. */
export const TUS_ROUTES: Readonly<Record<string, readonly TusMethod[]>> = {
  [UPLOADS_PATH]: COLLECTION_METHODS,
  [`${UPLOADS_PATH}/{upload_id}`]: MEMBER_METHODS,
};

/** The tus route for a path below the base path: the collection, or one upload; undefined for other paths. */
export function matchTusPath(routePath: string): { uploadId?: string; methods: readonly TusMethod[] } | undefined {
  if (routePath === UPLOADS_PATH) return { methods: COLLECTION_METHODS };
  if (!routePath.startsWith(`${UPLOADS_PATH}/`)) return undefined;
  const uploadId = routePath.slice(UPLOADS_PATH.length + 1);
  if (uploadId.includes('/')) return undefined;
  return { uploadId, methods: MEMBER_METHODS };
}

/** Serves one tus request; every answer, errors included, carries `Tus-Resumable`. */
export async function serveTus(context: RouteContext, uploadId: string | undefined): Promise<Response> {
  const { request } = context;
  const method = request.method as TusMethod;
  const body = request.body ? requestBodyOf(request.body) : undefined;
  let response: Response;
  try {
    if (method === 'OPTIONS') {
      response = discovery(context);
    } else {
      checkTusResumable(request.headers);
      if (uploadId === undefined) response = await create(context, body?.stream ?? null);
      else {
        // Not an id this server makes: unknown, without asking the store.
        if (!looksLikeId(uploadId)) throw new AttacheError('not_found', 'no such upload (unknown, terminated or expired)');
        if (method === 'HEAD') response = await head(context, uploadId);
        else if (method === 'PATCH') response = await patch(context, uploadId, body?.stream ?? null);
        else response = await terminate(context, uploadId);
      }
    }
  } catch (error) {
    response = errorResponse(error, {
      quiet: request.signal.aborted,
      headers: error instanceof AttacheError && error.code === 'unsupported_tus_version' ? { 'Tus-Version': TUS_VERSION } : {},
    });
    // A HEAD answer has no body.
    if (method === 'HEAD') response = new Response(null, { status: response.status, headers: response.headers });
  }
  const headers = new Headers(response.headers);
  headers.set('Tus-Resumable', TUS_VERSION);
  // Answered before the body ended: the client may still be sending, so this connection cannot carry another request.
  if (body && !body.readToEnd()) headers.set('Connection', 'close');
  return new Response(response.body, { status: response.status, headers });
}

function discovery({ store }: RouteContext): Response {
  const headers: Record<string, string> = {
    'Tus-Version': TUS_VERSION,
    'Tus-Extension': TUS_EXTENSIONS.join(','),
    'Tus-Checksum-Algorithm': CHECKSUM_ALGORITHMS.join(','),
  };
  if (store.maxBytes > 0) headers['Tus-Max-Size'] = String(store.maxBytes);
  return new Response(null, { status: 204, headers });
}

function checkTusResumable(headers: Headers): void {
  const version = headers.get('Tus-Resumable');
  if (version !== TUS_VERSION) {
    throw new AttacheError(
      'unsupported_tus_version',
      version === null ? `send Tus-Resumable: ${TUS_VERSION}` : `Tus-Resumable ${version.slice(0, 32)} is not supported; this server speaks ${TUS_VERSION}`,
    );
  }
}

async function create(context: RouteContext, body: ReadableStream<Uint8Array> | null): Promise<Response> {
  const { request, url, store, basePath, authorize } = context;
  const headers = request.headers;
  if (headers.has('Upload-Defer-Length')) {
    throw new AttacheError('invalid_body', 'Upload-Defer-Length is not supported: send Upload-Length');
  }
  const length = parseNonNegative(headers.get('Upload-Length'), 'Upload-Length');
  const metadataText = headers.get('Upload-Metadata') ?? '';
  const metadata = parseUploadMetadata(metadataText);
  const name = metadata.get('name') ?? metadata.get('filename');
  if (name === undefined) throw new AttacheError('missing_name', 'Upload-Metadata must carry filename (or name)');
  const rawType = metadata.get('content_type') ?? metadata.get('contentType') ?? metadata.get('filetype') ?? metadata.get('type');
  const options: CreateUploadOptions = { length, name, metadata: metadataText };
  if (rawType !== undefined && rawType !== '') options.contentType = checkContentType(rawType, 'Upload-Metadata content type');

  // The same order as the attachment routes: key → name → namespace → validity → lease headers.
  const namespaceParam = url.searchParams.get('namespace') || undefined;
  const keyParam = url.searchParams.get('key') || undefined;
  // As for POST /attachments: a document upload shows the hook the namespace it asked for, if any (else the store's).
  let scope: { namespace: string; key?: string } | undefined;
  if (keyParam !== undefined || hasLeaseHeaders(headers)) {
    if (keyParam === undefined) throw new AttacheError('missing_key', 'an upload with lease headers needs ?key= (and ?namespace= unless default)');
    const namespace = checkNamespace(namespaceParam);
    const key = checkKey(keyParam);
    checkName(name);
    const lease = readLeaseHeaders(headers);
    options.lease = { namespace, key, leaseId: lease.leaseId, txnId: lease.txnId, fencingToken: lease.fencingToken };
    scope = { namespace, key };
  } else {
    checkName(name);
    if (namespaceParam !== undefined) options.namespace = checkNamespace(namespaceParam);
    scope = options.namespace === undefined ? undefined : { namespace: options.namespace };
  }
  if (store.maxBytes > 0 && length > store.maxBytes) {
    throw new AttacheError('attachment_too_large', `Upload-Length ${length} is above this server's limit of ${store.maxBytes} bytes`);
  }
  const denied = await authorize('upload', scope);
  if (denied) return denied;

  // creation-with-upload: the body (if any) must be the first bytes, typed as a PATCH's.
  const withBytes = body !== null && (headers.get('Content-Length') ?? '') !== '0';
  if (withBytes) checkOffsetContentType(headers);
  let state = await store.uploads.create(options);
  const location = `${basePath}${UPLOADS_PATH}/${state.uploadId}`;
  if (withBytes) {
    // The upload exists now: a failing first chunk still answers 201, with the offset reached, so the client resumes.
    try {
      state = await appendBody(context, state.uploadId, 0, body);
    } catch (error) {
      if (!(error instanceof AttacheError) || error.status >= 500) throw error;
      state = await store.uploads.status(state.uploadId).catch(() => state);
    }
  } else if (body) {
    await body.cancel().catch(() => {});
  }
  return new Response(null, { status: 201, headers: { Location: location, ...progressHeaders(state) } });
}

async function head({ store, authorize }: RouteContext, uploadId: string): Promise<Response> {
  const denied = await authorize('upload', scopeOf(await store.uploads.scope(uploadId)));
  if (denied) return denied;
  const state = await store.uploads.status(uploadId);
  const headers: Record<string, string> = {
    ...progressHeaders(state),
    'Upload-Length': String(state.length),
    'Cache-Control': 'no-store',
  };
  if (state.metadata !== '') headers['Upload-Metadata'] = state.metadata;
  return new Response(null, { status: 200, headers });
}

async function patch(context: RouteContext, uploadId: string, body: ReadableStream<Uint8Array> | null): Promise<Response> {
  const { request, store, authorize } = context;
  checkOffsetContentType(request.headers);
  const offset = parseNonNegative(request.headers.get('Upload-Offset'), 'Upload-Offset');
  const binding = await store.uploads.scope(uploadId);
  checkLeaseHeadersMatch(context, uploadId, binding);
  const denied = await authorize('upload', scopeOf(binding));
  if (denied) return denied;
  const state = await appendBody(context, uploadId, offset, body);
  return new Response(null, { status: 204, headers: progressHeaders(state) });
}

/** Lease headers on a PATCH are optional (the upload is bound at creation), but when sent they must name that lease. */
function checkLeaseHeadersMatch({ request }: RouteContext, uploadId: string, binding: UploadBinding): void {
  if (!hasLeaseHeaders(request.headers)) return;
  if (binding.leaseId === undefined) throw new AttacheError('lease_required', `upload ${uploadId} is a document upload, bound to no lease`);
  const sent = readLeaseHeaders(request.headers);
  if (sent.leaseId !== binding.leaseId) throw new AttacheError('lease_required', `upload ${uploadId} belongs to another lease`);
  if (sent.txnId !== binding.txnId) throw new AttacheError('txn_mismatch', `upload ${uploadId} belongs to another transaction`);
}

async function appendBody(
  context: RouteContext,
  uploadId: string,
  offset: number,
  body: ReadableStream<Uint8Array> | null,
): Promise<UploadState> {
  const { request, store } = context;
  const options: AppendUploadOptions = { offset, body, signal: request.signal };
  const checksum = parseUploadChecksum(request.headers.get('Upload-Checksum'));
  if (checksum !== undefined) options.checksum = checksum;
  const releaseSlot = context.uploadSlots.take();
  try {
    return await store.uploads.append(uploadId, options);
  } finally {
    releaseSlot();
  }
}

async function terminate({ store, authorize }: RouteContext, uploadId: string): Promise<Response> {
  const denied = await authorize('upload', scopeOf(await store.uploads.scope(uploadId)));
  if (denied) return denied;
  await store.uploads.terminate(uploadId);
  return new Response(null, { status: 204 });
}

/** What the authorize hook sees: the namespace, and the key of a lease-bound upload. */
function scopeOf(binding: UploadBinding): { namespace: string; key?: string } {
  return binding.key === undefined ? { namespace: binding.namespace } : { namespace: binding.namespace, key: binding.key };
}

function progressHeaders(state: UploadState): Record<string, string> {
  const headers: Record<string, string> = {
    'Upload-Offset': String(state.offset),
    'Upload-Expires': state.expiresAt.toUTCString(),
  };
  if (state.attachmentId !== null) headers['X-Attachment-ID'] = state.attachmentId;
  return headers;
}

function checkOffsetContentType(headers: Headers): void {
  const type = headers.get('Content-Type')?.split(';', 1)[0]?.trim().toLowerCase();
  if (type !== OFFSET_CONTENT_TYPE) {
    throw new AttacheError('unsupported_media_type', `the bytes of an upload are sent as Content-Type: ${OFFSET_CONTENT_TYPE}`);
  }
}

function parseNonNegative(value: string | null, header: string): number {
  if (value === null || value === '') throw new AttacheError('invalid_body', `${header} is required`);
  const number = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number)) throw new AttacheError('invalid_body', `${header} must be a non-negative integer`);
  return number;
}

/** `Upload-Metadata`: comma-separated `key base64value` pairs (value optional), keys unique. */
export function parseUploadMetadata(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  if (text.length > MAX_METADATA_LENGTH) {
    throw new AttacheError('invalid_body', `Upload-Metadata is longer than ${MAX_METADATA_LENGTH} characters`);
  }
  if (text.trim() === '') return entries;
  for (const pair of text.split(',')) {
    const [key, value, extra] = pair.trim().split(' ');
    if (!key || extra !== undefined || !/^[\x21-\x7e]+$/.test(key)) {
      throw new AttacheError('invalid_body', 'Upload-Metadata must be comma-separated "key base64value" pairs');
    }
    if (entries.has(key)) throw new AttacheError('invalid_body', `Upload-Metadata has the key ${JSON.stringify(key)} twice`);
    entries.set(key, value === undefined ? '' : decodeBase64Text(value, key));
  }
  return entries;
}

function decodeBase64Text(value: string, key: string): string {
  try {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new Error('not base64');
    const bytes = Uint8Array.from(atob(value), (char) => char.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AttacheError('invalid_body', `Upload-Metadata value of ${JSON.stringify(key)} is not base64 of UTF-8 text`);
  }
}

/** `Upload-Checksum: <algorithm> <base64 digest>`; an algorithm we do not offer is a 400, as the spec asks. */
function parseUploadChecksum(value: string | null): { algorithm: ChecksumAlgorithm; digest: Uint8Array } | undefined {
  if (value === null) return undefined;
  const [algorithm, digest, extra] = value.trim().split(' ');
  if (!CHECKSUM_ALGORITHMS.includes(algorithm as ChecksumAlgorithm)) {
    throw new AttacheError('invalid_body', `Upload-Checksum algorithm must be one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
  }
  let bytes: Uint8Array | undefined;
  try {
    if (digest !== undefined && extra === undefined && /^[A-Za-z0-9+/]+={0,2}$/.test(digest)) {
      bytes = Uint8Array.from(atob(digest), (char) => char.charCodeAt(0));
    }
  } catch {
    bytes = undefined;
  }
  const expectedLength = { sha1: 20, sha256: 32, crc32: 4 }[algorithm as ChecksumAlgorithm];
  if (bytes === undefined || bytes.byteLength !== expectedLength) {
    throw new AttacheError('invalid_body', `Upload-Checksum ${algorithm} must be ${expectedLength} bytes in base64`);
  }
  return { algorithm: algorithm as ChecksumAlgorithm, digest: bytes };
}
