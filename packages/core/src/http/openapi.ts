// The OpenAPI 3.1 description of API.md §2–§3, served at `GET <base>/openapi.json`.
// Built from plain data so tests can check it against the route table and
// the error table.
import { ERROR_STATUS, type ErrorCode } from '../errors.js';
import { MAX_TTL_SECONDS, MIN_TTL_SECONDS } from '../lease-rules.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const ref = (path: string): JsonObject => ({ $ref: `#/components/${path}` });
const json = (schema: JsonObject): JsonObject => ({ 'application/json': { schema } });

const NAME_RULES = '1–255 characters; not `.` or `..`; no `/`, `\\`, NUL or other control characters.';
const KEY_RULES = '`/`-separated segments of `[a-z0-9._-]`, at most 128 characters, no empty, `.` or `..` segment.';

const parameters: JsonObject = {
  namespace: {
    name: 'namespace',
    in: 'query',
    description: 'Namespace, `[a-z0-9._-]{1,128}`.',
    schema: { type: 'string', pattern: '^[a-z0-9._-]{1,128}$', default: 'default' },
  },
  key: { name: 'key', in: 'query', required: true, description: `Key: ${KEY_RULES}`, schema: { type: 'string', maxLength: 128 } },
  optionalKey: {
    name: 'key',
    in: 'query',
    description: `Key: ${KEY_RULES} Without a key, the upload is a document attachment (its own key, committed at once) or, for reads, \`id\` alone selects any committed attachment.`,
    schema: { type: 'string', maxLength: 128 },
  },
  name: { name: 'name', in: 'query', description: `Attachment name: ${NAME_RULES}`, schema: { type: 'string', minLength: 1, maxLength: 255 } },
  id: { name: 'id', in: 'query', description: 'Attachment id (a UUID). Takes precedence over `name`.', schema: { type: 'string', format: 'uuid' } },
  documentId: {
    name: 'id',
    in: 'query',
    description:
      "Document face, raw body only: the new document's id, chosen by the client so it knows it before the upload ends. A UUIDv7 in lowercase hex (else 400 `invalid_ref`) that no attachment has yet (else 409 `attachment_exists`). With `key` or a multipart body: 400 `invalid_query`.",
    schema: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' },
  },
  public: {
    name: 'public',
    in: 'query',
    description: '`true`/`1`: read committed state even when lease headers are sent.',
    schema: { type: 'string', enum: ['true', '1', 'false', '0'] },
  },
  contentType: {
    name: 'content_type',
    in: 'query',
    description:
      'Stored media type; else the multipart part type, else the request `Content-Type` (unless a form encoding), else `application/octet-stream`. Exactly one RFC 9110 media type (no comma lists); stored in canonical form. Malformed → 400 `invalid_content_type`.',
    schema: { type: 'string', maxLength: 255 },
  },
  maxBytes: {
    name: 'max_bytes',
    in: 'query',
    description: 'Per-request size limit in bytes (per part for multipart), capped by the server maximum; 0 = the server maximum.',
    schema: { type: 'integer', minimum: 0 },
  },
  preventOverwrite: {
    name: 'prevent_overwrite',
    in: 'query',
    description: '`true`/`1`: if the name exists, answer it with `noop: true` without reading the body.',
    schema: { type: 'string', enum: ['true', '1', 'false', '0'] },
  },
  leaseId: { name: 'X-Lease-ID', in: 'header', description: 'Lease id from acquire.', schema: { type: 'string' } },
  txnId: { name: 'X-Txn-ID', in: 'header', description: "The lease's transaction id.", schema: { type: 'string' } },
  fencingToken: { name: 'X-Fencing-Token', in: 'header', description: "The lease's fencing token.", schema: { type: 'integer', minimum: 0 } },
  requiredFencingToken: {
    name: 'X-Fencing-Token',
    in: 'header',
    required: true,
    description: "The lease's fencing token.",
    schema: { type: 'integer', minimum: 0 },
  },
  crc32: {
    name: 'X-Attachment-CRC32',
    in: 'header',
    description: 'Expected CRC-32 of a raw body (8 hex digits); mismatch → 400 `checksum_mismatch`.',
    schema: { type: 'string', pattern: '^[0-9a-fA-F]{8}$' },
  },
  contentDigest: {
    name: 'Content-Digest',
    in: 'header',
    description:
      'RFC 9530 digest of a raw body; every `sha-256=:<base64>:` member is verified (two differing ones → 400 `checksum_mismatch` at once), other algorithms (`sha-512` too) are ignored.',
    schema: { type: 'string' },
  },
  range: {
    name: 'Range',
    in: 'header',
    description: 'One range: `bytes=a-b`, `bytes=a-` or `bytes=-n`. Malformed or multiple ranges are ignored.',
    schema: { type: 'string' },
  },
  ifNoneMatch: { name: 'If-None-Match', in: 'header', description: 'ETag list or `*`; a match → 304.', schema: { type: 'string' } },
  uploadId: { name: 'upload_id', in: 'path', required: true, description: 'The upload, from `Location` of its creation.', schema: { type: 'string', format: 'uuid' } },
  tusResumable: {
    name: 'Tus-Resumable',
    in: 'header',
    required: true,
    description: 'tus protocol version: `1.0.0` (else 412 `unsupported_tus_version`, with `Tus-Version`).',
    schema: { type: 'string', const: '1.0.0' },
  },
  uploadLength: {
    name: 'Upload-Length',
    in: 'header',
    required: true,
    description: 'Total size in bytes, at most the server maximum (else 413 `attachment_too_large`). `Upload-Defer-Length` is not supported.',
    schema: { type: 'integer', minimum: 0 },
  },
  uploadMetadata: {
    name: 'Upload-Metadata',
    in: 'header',
    description:
      'Comma-separated `key base64(value)` pairs: `filename` (or `name`) names the attachment (required); `filetype`, `type`, `content_type` or `contentType` gives its media type. Echoed on HEAD; at most 4096 characters.',
    schema: { type: 'string', maxLength: 4096 },
  },
  uploadOffset: {
    name: 'Upload-Offset',
    in: 'header',
    required: true,
    description: 'Where these bytes start: the offset HEAD answered (else 409 `offset_mismatch`).',
    schema: { type: 'integer', minimum: 0 },
  },
  uploadChecksum: {
    name: 'Upload-Checksum',
    in: 'header',
    description: 'tus checksum extension: `<sha1|sha256|crc32> <base64 digest>` of this request body (CRC-32 as 4 big-endian bytes). Mismatch → 460, the body is discarded.',
    schema: { type: 'string' },
  },
};

const headers: JsonObject = {
  RetryAfter: { description: 'Seconds before retrying may succeed.', schema: { type: 'integer', minimum: 1 } },
  AttachmentId: { description: 'Id of the stored attachment (multipart: only with exactly one file part).', schema: { type: 'string' } },
  FencingToken: { description: "The lease's fencing token.", schema: { type: 'integer' } },
  ContentRange: { description: '`bytes a-b/size` (206) or `bytes */size` (416).', schema: { type: 'string' } },
  ETag: { description: '`"<sha256>"`.', schema: { type: 'string' } },
  LastModified: { description: 'Last update, HTTP date.', schema: { type: 'string' } },
  AcceptRanges: { schema: { type: 'string', const: 'bytes' } },
  ContentLength: { schema: { type: 'integer' } },
  ContentDisposition: {
    description: "`attachment` (or `inline` for safe media types) with an ASCII `filename=` and `filename*=UTF-8''…`.",
    schema: { type: 'string' },
  },
  AttachmentName: { description: 'Name, percent-encoded (RFC 3986).', schema: { type: 'string' } },
  AttachmentSize: { schema: { type: 'integer' } },
  AttachmentSha256: { schema: { type: 'string' } },
  AttachmentCrc32: { schema: { type: 'string' } },
  ContentTypeOptions: { schema: { type: 'string', const: 'nosniff' } },
  Allow: { description: 'Methods the path accepts.', schema: { type: 'string' } },
  WwwAuthenticate: { schema: { type: 'string', const: 'Bearer' } },
  TusResumable: { description: 'Every tus answer: the protocol version.', schema: { type: 'string', const: '1.0.0' } },
  TusVersion: { description: 'Versions this server speaks.', schema: { type: 'string', const: '1.0.0' } },
  TusExtension: { schema: { type: 'string', const: 'creation,creation-with-upload,termination,checksum,expiration' } },
  TusMaxSize: { description: 'The server maximum in bytes (absent when unlimited).', schema: { type: 'integer' } },
  TusChecksumAlgorithm: { schema: { type: 'string', const: 'sha1,sha256,crc32' } },
  UploadOffset: { description: 'Bytes received and durable.', schema: { type: 'integer', minimum: 0 } },
  UploadLength: { schema: { type: 'integer', minimum: 0 } },
  UploadMetadata: { description: 'As sent at creation.', schema: { type: 'string' } },
  UploadExpires: { description: 'When the upload is forgotten with its bytes unless touched again (HTTP date).', schema: { type: 'string' } },
  Location: { description: 'The upload\'s URL (path below the base path: `<base>/uploads/<id>`).', schema: { type: 'string' } },
  UploadAttachmentId: { description: 'Once the last byte arrived: the attachment\'s id.', schema: { type: 'string', format: 'uuid' } },
};

const attachmentSchema: JsonObject = {
  type: 'object',
  required: ['id', 'name', 'namespace', 'key', 'size', 'content_type', 'extension', 'crc32', 'sha256', 'created_at_unix', 'updated_at_unix'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    namespace: { type: 'string' },
    key: { type: 'string' },
    size: { type: 'integer', minimum: 0 },
    content_type: { type: 'string' },
    extension: { type: ['string', 'null'] },
    crc32: { type: 'string', pattern: '^[0-9a-f]{8}$' },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    created_at_unix: { type: 'integer' },
    updated_at_unix: { type: 'integer' },
  },
};

const ttlSeconds: JsonObject = {
  type: 'number',
  minimum: MIN_TTL_SECONDS,
  maximum: MAX_TTL_SECONDS,
  description: `Seconds until the lease expires: from ${MIN_TTL_SECONDS} (1 ms) to ${MAX_TTL_SECONDS} (7 days).`,
};

const leaseBody = (extra: JsonObject, required: string[]): JsonObject => ({
  type: 'object',
  required: ['key', ...required],
  properties: {
    namespace: { type: 'string', default: 'default' },
    key: { type: 'string' },
    ...extra,
  },
});

const schemas: JsonObject = {
  Attachment: attachmentSchema,
  Error: {
    type: 'object',
    required: ['error', 'detail'],
    properties: {
      error: { type: 'string', enum: Object.keys(ERROR_STATUS) },
      detail: { type: 'string', description: 'Human-readable explanation.' },
      retry_after_seconds: { type: 'integer', minimum: 1 },
    },
  },
  AcquireRequest: leaseBody(
    {
      owner: { type: 'string', minLength: 1, maxLength: 256, description: 'Who holds the lease, for diagnostics.' },
      ttl_seconds: ttlSeconds,
      block_seconds: { type: 'integer', minimum: -1, default: -1, description: '-1 no wait, 0 forever, > 0 seconds.' },
      txn_id: { type: 'string', description: 'Join this transaction: releasing any of its leases commits every key.' },
    },
    ['owner', 'ttl_seconds'],
  ),
  Lease: {
    type: 'object',
    required: ['lease_id', 'txn_id', 'key', 'namespace', 'owner', 'expires_at_unix', 'fencing_token'],
    properties: {
      lease_id: { type: 'string' },
      txn_id: { type: 'string' },
      key: { type: 'string' },
      namespace: { type: 'string' },
      owner: { type: 'string' },
      expires_at_unix: { type: 'integer' },
      fencing_token: { type: 'integer' },
    },
  },
  KeepaliveRequest: leaseBody(
    { lease_id: { type: 'string' }, txn_id: { type: 'string' }, ttl_seconds: ttlSeconds },
    ['lease_id', 'txn_id', 'ttl_seconds'],
  ),
  KeepaliveResponse: {
    type: 'object',
    required: ['expires_at_unix', 'fencing_token'],
    properties: { expires_at_unix: { type: 'integer' }, fencing_token: { type: 'integer' } },
  },
  ReleaseRequest: leaseBody(
    { lease_id: { type: 'string' }, txn_id: { type: 'string' }, rollback: { type: 'boolean', default: false } },
    ['lease_id', 'txn_id'],
  ),
  ReleaseResponse: { type: 'object', required: ['released'], properties: { released: { type: 'boolean', const: true } } },
  UploadResponse: {
    type: 'object',
    required: ['attachment'],
    properties: { attachment: ref('schemas/Attachment'), noop: { type: 'boolean' } },
  },
  MultipartUploadResponse: {
    type: 'object',
    required: ['attachments'],
    properties: { attachments: { type: 'array', items: ref('schemas/Attachment') }, noop: { type: 'boolean' } },
  },
  AttachmentList: {
    type: 'object',
    required: ['namespace', 'key', 'attachments'],
    properties: { namespace: { type: 'string' }, key: { type: 'string' }, attachments: { type: 'array', items: ref('schemas/Attachment') } },
  },
  Deleted: { type: 'object', required: ['deleted'], properties: { deleted: { type: 'boolean' } } },
  DeletedCount: { type: 'object', required: ['deleted'], properties: { deleted: { type: 'integer', minimum: 0 } } },
  Health: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean', const: true } } },
};

/** Error responses of an operation, one per status, listing its codes (plus those any route may answer). */
function errorResponses(codes: readonly ErrorCode[], always: readonly ErrorCode[] = ALWAYS_POSSIBLE): JsonObject {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of [...codes, ...always]) {
    const status = ERROR_STATUS[code];
    const list = byStatus.get(status) ?? [];
    if (!list.includes(code)) list.push(code);
    byStatus.set(status, list);
  }
  const responses: JsonObject = {};
  for (const [status, statusCodes] of [...byStatus].sort(([a], [b]) => a - b)) {
    const response: JsonObject = {
      description: statusCodes.map((code) => `\`${code}\``).join(', '),
      content: json({
        allOf: [ref('schemas/Error'), { type: 'object', properties: { error: { type: 'string', enum: statusCodes } } }],
      }),
    };
    const responseHeaders: JsonObject = {};
    if (statusCodes.includes('waiting') || statusCodes.includes('unavailable')) responseHeaders['Retry-After'] = ref('headers/RetryAfter');
    if (status === 401) responseHeaders['WWW-Authenticate'] = ref('headers/WwwAuthenticate');
    if (status === 405) responseHeaders.Allow = ref('headers/Allow');
    if (status === 416) responseHeaders['Content-Range'] = ref('headers/ContentRange');
    if (Object.keys(responseHeaders).length > 0) response.headers = responseHeaders;
    responses[String(status)] = response;
  }
  return responses;
}

const LEASE_HEADER_ERRORS: readonly ErrorCode[] = ['missing_lease', 'missing_txn', 'missing_fencing_token', 'invalid_fencing_token'];
const LEASE_STATE_ERRORS: readonly ErrorCode[] = ['lease_required', 'lease_expired', 'fencing_mismatch', 'txn_mismatch'];
const SCOPE_ERRORS: readonly ErrorCode[] = ['missing_key', 'invalid_key', 'invalid_namespace'];
const SELECTOR_ERRORS: readonly ErrorCode[] = [...SCOPE_ERRORS, 'missing_name', 'invalid_name', 'attachment_not_found'];
const JSON_BODY_ERRORS: readonly ErrorCode[] = ['invalid_body', 'invalid_content_type'];
// Reading bytes encrypted at rest: the key is missing, or the stored bytes fail authentication.
const DECRYPT_ERRORS: readonly ErrorCode[] = ['key_unavailable', 'decryption_failed'];
const UPLOAD_ERRORS: readonly ErrorCode[] = [
  ...SCOPE_ERRORS,
  'missing_name',
  'invalid_name',
  ...LEASE_HEADER_ERRORS,
  'invalid_max_bytes',
  ...LEASE_STATE_ERRORS,
  'invalid_content_type',
  'checksum_mismatch',
  'size_mismatch',
  'invalid_body',
  'attachment_too_large',
  // A document upload that chose its id (`id=`): malformed, taken, or its key leased right now.
  'invalid_ref',
  'attachment_exists',
  'waiting',
];
// The tus routes (`/uploads`).
const TUS_ALWAYS: readonly ErrorCode[] = ['unsupported_tus_version'];
const TUS_APPEND_ERRORS: readonly ErrorCode[] = [
  'unsupported_media_type',
  'invalid_body',
  'offset_mismatch',
  'upload_locked',
  'upload_checksum_mismatch',
  'attachment_too_large',
  // At the last byte, the assembled bytes are checked against the running CRC-32 and the size.
  'checksum_mismatch',
  'size_mismatch',
  ...DECRYPT_ERRORS,
];
const TUS_CREATE_ERRORS: readonly ErrorCode[] = [
  ...TUS_ALWAYS,
  'invalid_body',
  ...SCOPE_ERRORS,
  'missing_name',
  'invalid_name',
  'invalid_content_type',
  ...LEASE_HEADER_ERRORS,
  ...LEASE_STATE_ERRORS,
  ...TUS_APPEND_ERRORS,
];
const TUS_UPLOAD_ERRORS: readonly ErrorCode[] = [...TUS_ALWAYS, 'not_found', ...LEASE_STATE_ERRORS];
// Codes no route answers: `not_found` is for paths outside the route table,
// `invalid_argument` belongs to the TypeScript API (HTTP reports its own
// fields as `invalid_body`). `invalid_ref` is the TypeScript API's too, and
// the upload route's for a malformed chosen document id (`id=`).
const NOT_FROM_ROUTES: readonly ErrorCode[] = ['not_found', 'invalid_argument'];
const PLACED = new Set<ErrorCode>([
  ...TUS_CREATE_ERRORS, ...TUS_UPLOAD_ERRORS,
  ...LEASE_HEADER_ERRORS, ...LEASE_STATE_ERRORS, ...SELECTOR_ERRORS, ...UPLOAD_ERRORS, ...JSON_BODY_ERRORS,
  'waiting', 'range_not_satisfiable', ...DECRYPT_ERRORS, ...NOT_FROM_ROUTES,
]);
// Any route may fail these ways: auth/authorize hook, wrong method, an
// unknown or repeated query parameter, storage down, a bug — and with any
// code of ERROR_STATUS that no list above places yet, so a code added to
// errors.ts is documented at once (if broadly) until someone places it.
const ANY_ROUTE: readonly ErrorCode[] = ['invalid_query', 'unauthorized', 'method_not_allowed', 'unavailable', 'internal'];
const ALWAYS_POSSIBLE: readonly ErrorCode[] = [
  ...ANY_ROUTE,
  ...(Object.keys(ERROR_STATUS) as ErrorCode[]).filter((code) => !PLACED.has(code) && !ANY_ROUTE.includes(code)),
];
// healthz needs no token and touches no storage.
const HEALTH_ERRORS: readonly ErrorCode[] = ['invalid_query', 'internal'];

const p = (name: string): JsonObject => ref(`parameters/${name}`);
const h = (name: string): JsonObject => ref(`headers/${name}`);
const leaseHeaderParameters = [p('leaseId'), p('txnId'), p('fencingToken')];

const downloadHeaders: JsonObject = {
  'Content-Length': h('ContentLength'),
  ETag: h('ETag'),
  'Last-Modified': h('LastModified'),
  'Accept-Ranges': h('AcceptRanges'),
  'Content-Disposition': h('ContentDisposition'),
  'X-Attachment-ID': h('AttachmentId'),
  'X-Attachment-Name': h('AttachmentName'),
  'X-Attachment-Size': h('AttachmentSize'),
  'X-Attachment-SHA256': h('AttachmentSha256'),
  'X-Attachment-CRC32': h('AttachmentCrc32'),
  'X-Content-Type-Options': h('ContentTypeOptions'),
};

function downloadOperation(head: boolean): JsonObject {
  const body: JsonObject = head ? {} : { content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } };
  return {
    operationId: head ? 'statAttachment' : 'downloadAttachment',
    summary: head ? 'Headers of an attachment (stat)' : 'Download an attachment',
    description:
      'Committed state, or with lease headers (and not `public`) the lease view: committed overlaid by staged writes and deletes. `id` alone (no key) reads any committed attachment.',
    parameters: [p('namespace'), p('optionalKey'), p('name'), p('id'), p('public'), ...leaseHeaderParameters, p('range'), p('ifNoneMatch')],
    responses: {
      '200': { description: 'The attachment', headers: downloadHeaders, ...body },
      '206': { description: 'The requested range', headers: { ...downloadHeaders, 'Content-Range': h('ContentRange') }, ...body },
      '304': { description: 'Not modified (If-None-Match matched)', headers: { ETag: h('ETag') } },
      ...errorResponses([...SELECTOR_ERRORS, ...LEASE_HEADER_ERRORS, ...LEASE_STATE_ERRORS, 'range_not_satisfiable', ...DECRYPT_ERRORS]),
    },
  };
}

const tusHeaders = (names: Record<string, string>): JsonObject =>
  Object.fromEntries([['Tus-Resumable', h('TusResumable')], ...Object.entries(names).map(([header, name]) => [header, h(name)])]);
const progress = { 'Upload-Offset': 'UploadOffset', 'Upload-Expires': 'UploadExpires', 'X-Attachment-ID': 'UploadAttachmentId' };

/** The tus 1.0 routes (core, creation, creation-with-upload, termination, checksum, expiration). */
function tusPaths(): JsonObject {
  const discovery = (operationId: string): JsonObject => ({
    operationId,
    summary: 'tus discovery: the version, extensions, maximum size and checksum algorithms (no Tus-Resumable needed)',
    responses: {
      '204': {
        description: 'What this server offers',
        headers: tusHeaders({
          'Tus-Version': 'TusVersion',
          'Tus-Extension': 'TusExtension',
          'Tus-Max-Size': 'TusMaxSize',
          'Tus-Checksum-Algorithm': 'TusChecksumAlgorithm',
        }),
      },
      ...errorResponses([]),
    },
  });
  const octets = { 'application/offset+octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } };
  return {
    '/uploads': {
      options: discovery('tusOptions'),
      post: {
        operationId: 'createUpload',
        summary: 'Create a resumable upload (tus creation, creation-with-upload)',
        description:
          'Without `key` and lease headers, the upload becomes a committed document attachment (as `POST /attachments` without a key) when its last byte arrives. With `key` and lease headers, it is bound to that lease and staged in its transaction at the last byte; once the transaction commits, rolls back or expires, an unfinished upload is refused and its bytes deleted. A body (`Content-Type: application/offset+octet-stream`) is taken as the first bytes.',
        parameters: [p('namespace'), p('optionalKey'), p('tusResumable'), p('uploadLength'), p('uploadMetadata'), p('uploadChecksum'), ...leaseHeaderParameters],
        requestBody: { required: false, content: octets },
        responses: {
          '201': { description: 'Created', headers: tusHeaders({ Location: 'Location', ...progress }) },
          ...errorResponses(TUS_CREATE_ERRORS),
        },
      },
    },
    '/uploads/{upload_id}': {
      parameters: [p('uploadId')],
      options: discovery('tusUploadOptions'),
      head: {
        operationId: 'uploadOffset',
        summary: 'Where an upload stands (Upload-Offset); finishes an upload whose bytes all arrived',
        parameters: [p('tusResumable')],
        responses: {
          '200': {
            description: 'The offset (no body; errors too have none on HEAD)',
            headers: tusHeaders({ ...progress, 'Upload-Length': 'UploadLength', 'Upload-Metadata': 'UploadMetadata' }),
          },
          ...errorResponses(TUS_UPLOAD_ERRORS),
        },
      },
      patch: {
        operationId: 'appendUpload',
        summary: 'Append bytes at Upload-Offset',
        description:
          'The offset is acknowledged once the bytes are durable. When the connection breaks, the bytes received so far are kept (unless an `Upload-Checksum` was sent); ask HEAD and resume. Of two requests at one offset, one wins and the other gets 409.',
        parameters: [p('tusResumable'), p('uploadOffset'), p('uploadChecksum'), ...leaseHeaderParameters],
        requestBody: { required: true, content: octets },
        responses: {
          '204': { description: 'Appended', headers: tusHeaders(progress) },
          ...errorResponses([...TUS_UPLOAD_ERRORS, ...TUS_APPEND_ERRORS, ...LEASE_HEADER_ERRORS]),
        },
      },
      delete: {
        operationId: 'terminateUpload',
        summary: 'Delete an upload and its bytes (tus termination); a finished upload’s attachment stays',
        parameters: [p('tusResumable')],
        responses: { '204': { description: 'Deleted', headers: tusHeaders({}) }, ...errorResponses(TUS_UPLOAD_ERRORS) },
      },
    },
  };
}

export function buildOpenApiDocument(options: { basePath: string; bearerAuth: boolean }): JsonObject {
  const paths: JsonObject = {
    '/acquire': {
      post: {
        operationId: 'acquire',
        summary: 'Acquire a lease on a key',
        requestBody: { required: true, content: json(ref('schemas/AcquireRequest')) },
        responses: {
          '200': { description: 'The lease', content: json(ref('schemas/Lease')) },
          ...errorResponses([...SCOPE_ERRORS, ...JSON_BODY_ERRORS, 'waiting']),
        },
      },
    },
    '/keepalive': {
      post: {
        operationId: 'keepalive',
        summary: 'Extend a lease',
        parameters: [p('requiredFencingToken')],
        requestBody: { required: true, content: json(ref('schemas/KeepaliveRequest')) },
        responses: {
          '200': { description: 'New expiry', content: json(ref('schemas/KeepaliveResponse')) },
          ...errorResponses([...SCOPE_ERRORS, ...LEASE_HEADER_ERRORS, ...LEASE_STATE_ERRORS, ...JSON_BODY_ERRORS]),
        },
      },
    },
    '/release': {
      post: {
        operationId: 'release',
        summary: 'Release a lease: commit its transaction, or roll it back',
        parameters: [p('requiredFencingToken')],
        requestBody: { required: true, content: json(ref('schemas/ReleaseRequest')) },
        responses: {
          '200': { description: 'Released (idempotent)', content: json(ref('schemas/ReleaseResponse')) },
          ...errorResponses([...SCOPE_ERRORS, ...LEASE_HEADER_ERRORS, ...LEASE_STATE_ERRORS, ...JSON_BODY_ERRORS]),
        },
      },
    },
    '/attachments': {
      post: {
        operationId: 'uploadAttachments',
        summary: 'Upload an attachment (raw body) or several (multipart/form-data)',
        description:
          'With `key`: staged in the lease transaction (lease headers required). Without `key` and lease headers: a document attachment, committed at once. Multipart: each file part is one attachment named by its filename (a query `name` names the first file part); all or none are kept.',
        parameters: [
          p('namespace'),
          p('optionalKey'),
          p('name'),
          p('contentType'),
          p('maxBytes'),
          p('preventOverwrite'),
          p('documentId'),
          ...leaseHeaderParameters,
          p('crc32'),
          p('contentDigest'),
        ],
        requestBody: {
          required: true,
          content: {
            'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
            'multipart/form-data': {
              schema: { type: 'object', additionalProperties: { type: 'string', contentMediaType: 'application/octet-stream' } },
            },
          },
        },
        responses: {
          '200': {
            description: 'Stored (`noop: true` when prevent_overwrite found the name)',
            headers: { 'X-Attachment-ID': h('AttachmentId'), 'X-Fencing-Token': h('FencingToken') },
            content: json({ oneOf: [ref('schemas/UploadResponse'), ref('schemas/MultipartUploadResponse')] }),
          },
          ...errorResponses(UPLOAD_ERRORS),
        },
      },
      get: {
        operationId: 'listAttachments',
        summary: 'List the attachments of a key, sorted by name',
        parameters: [p('namespace'), p('key'), p('public'), ...leaseHeaderParameters],
        responses: {
          '200': { description: 'The attachments', content: json(ref('schemas/AttachmentList')) },
          ...errorResponses([...SCOPE_ERRORS, ...LEASE_HEADER_ERRORS, ...LEASE_STATE_ERRORS]),
        },
      },
      delete: {
        operationId: 'deleteAllAttachments',
        summary: 'Stage the deletion of every attachment of a key',
        parameters: [p('namespace'), p('key'), p('leaseId'), p('txnId'), p('requiredFencingToken')],
        responses: {
          '200': { description: 'How many were deleted', content: json(ref('schemas/DeletedCount')) },
          ...errorResponses([...SCOPE_ERRORS, ...LEASE_HEADER_ERRORS, ...LEASE_STATE_ERRORS]),
        },
      },
    },
    '/attachment': {
      get: downloadOperation(false),
      head: downloadOperation(true),
      delete: {
        operationId: 'deleteAttachment',
        summary: 'Stage the deletion of one attachment',
        parameters: [p('namespace'), p('key'), p('name'), p('id'), p('leaseId'), p('txnId'), p('requiredFencingToken')],
        responses: {
          '200': { description: '`deleted: false` when it did not exist', content: json(ref('schemas/Deleted')) },
          ...errorResponses([...SELECTOR_ERRORS, ...LEASE_HEADER_ERRORS, ...LEASE_STATE_ERRORS]),
        },
      },
    },
    ...tusPaths(),
    '/healthz': {
      get: {
        operationId: 'healthz',
        summary: 'Liveness (never requires the bearer token)',
        security: [],
        responses: { '200': { description: 'Alive', content: json(ref('schemas/Health')) }, ...errorResponses([], HEALTH_ERRORS) },
      },
      head: {
        operationId: 'healthzHead',
        summary: 'Liveness, headers only (as GET, without the body)',
        security: [],
        responses: { '200': { description: 'Alive', headers: { 'Content-Length': h('ContentLength') } }, ...errorResponses([], HEALTH_ERRORS) },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) }, ...errorResponses([]) },
      },
      head: {
        operationId: 'openapiHead',
        summary: 'Headers of this document (as GET, without the body)',
        responses: { '200': { description: 'OpenAPI 3.1', headers: { 'Content-Length': h('ContentLength') } }, ...errorResponses([]) },
      },
    },
  };

  const document: JsonObject = {
    openapi: '3.1.0',
    info: {
      title: 'attache',
      version: '1',
      license: { name: 'MIT', identifier: 'MIT' },
      description:
        'Binary attachments beside lease-guarded keys. Uploads are staged in the lease transaction and commit atomically on release. Unknown paths answer 404 `not_found`. Every operation takes only the query parameters it lists: any other one, or one given twice, answers 400 `invalid_query`. JSON answers end with a newline.',
    },
    servers: [{ url: options.basePath === '' ? '/' : options.basePath }],
    paths,
    components: { schemas, parameters, headers },
  };
  if (options.bearerAuth) {
    (document.components as JsonObject).securitySchemes = {
      bearer: { type: 'http', scheme: 'bearer', description: 'The server token (`ATTACHE_TOKEN` for `attache serve`); `healthz` never needs it.' },
    };
    document.security = [{ bearer: [] }];
  } else {
    // Stated rather than left out: this server requires no credentials.
    document.security = [];
  }
  return document;
}
