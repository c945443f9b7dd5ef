// The route table (API.md §2) and one function per route. Each function
// parses and checks everything it can before touching the store or the body,
// asks the authorize hook, makes one engine call and shapes its answer.
import { AttacheError } from '../errors.js';
import { requestBodyOf } from '../streams.js';
import type { AttachmentStore, DocumentUpload, Lease } from '../types.js';
import { serveDownload, type AttachmentSource } from './download.js';
import { errorResponse } from './errors.js';
import { attachmentToJson, jsonResponse, leaseToJson, readJsonObject, unixSeconds } from './json.js';
import { storeFormUpload, type FormUploadOptions } from './in-app-upload.js';
import { buildOpenApiDocument } from './openapi.js';
import {
  FENCING_TOKEN_HEADER,
  parseAcquireBody,
  parseKeepaliveBody,
  parseListParams,
  parseReleaseBody,
  parseSelectorParams,
  parseUploadParams,
  resolveRawContentType,
  type Scope,
  type UploadParams,
} from './params.js';
import type { UploadSlots } from './upload-slots.js';

export type HandlerAction = 'acquire' | 'keepalive' | 'release' | 'upload' | 'list' | 'download' | 'delete';

export interface RouteContext {
  request: Request;
  url: URL;
  store: AttachmentStore;
  basePath: string;
  bearerAuth: boolean;
  uploadSlots: UploadSlots;
  /** Runs the authorize hook; a Response means "answer this instead". */
  authorize(action: HandlerAction, scope?: Partial<Scope>): Promise<Response | undefined>;
}

export type RouteFunction = (context: RouteContext) => Promise<Response>;
export type Method = 'GET' | 'HEAD' | 'POST' | 'DELETE';

export interface Route {
  run: RouteFunction;
  /** The query parameters this route reads; any other one (or one given twice) is refused before it runs. */
  query: readonly string[];
  /** Its body is a JSON object whose value, not its bytes, matters: a host may hand over a body a parser already read. */
  jsonBody?: boolean;
}

const route = (run: RouteFunction, query: readonly string[] = []): Route => ({ run, query });
const jsonRoute = (run: RouteFunction): Route => ({ run, query: [], jsonBody: true });

const SCOPE_QUERY = ['namespace', 'key'] as const;
const UPLOAD_QUERY = [...SCOPE_QUERY, 'name', 'content_type', 'max_bytes', 'prevent_overwrite', 'id'];
const SELECTOR_QUERY = [...SCOPE_QUERY, 'name', 'id'];

/** Path (relative to the base path) → method → route. */
export const ROUTES: Readonly<Record<string, Partial<Record<Method, Route>>>> = {
  // Lease calls carry everything in their JSON body.
  '/acquire': { POST: jsonRoute(acquire) },
  '/keepalive': { POST: jsonRoute(keepalive) },
  '/release': { POST: jsonRoute(release) },
  '/attachments': {
    POST: route(upload, UPLOAD_QUERY),
    GET: route(listAttachments, [...SCOPE_QUERY, 'public']),
    DELETE: route(deleteAllAttachments, SCOPE_QUERY),
  },
  '/attachment': {
    GET: route(download, [...SELECTOR_QUERY, 'public']),
    HEAD: route(download, [...SELECTOR_QUERY, 'public']),
    DELETE: route(deleteAttachment, SELECTOR_QUERY),
  },
  // HEAD as GET: load balancers and uptime checks probe with HEAD.
  '/healthz': { GET: route(healthz), HEAD: route(headOf(healthz)) },
  '/openapi.json': { GET: route(openapi), HEAD: route(headOf(openapi)) },
};

/**
 * Whether `method` on `routePath` (below the base path, e.g. `/acquire/`)
 * takes a JSON object body: hosts whose body parsers may have read it already
 * (Express behind `express.json()`) can then hand over the parsed value.
 */
export function routeTakesJsonBody(method: string, routePath: string): boolean {
  const path = routePath.length > 1 && routePath.endsWith('/') ? routePath.slice(0, -1) : routePath;
  const methods = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
  return methods?.[method.toUpperCase() as Method]?.jsonBody === true;
}

/**
 * Refuses a query parameter the route does not read, and one given twice: a
 * typo (`kye=`) or an ambiguous repeat must not silently change what the
 * request does (a document upload instead of a keyed one, say).
 */
export function checkQuery(search: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of search.keys()) {
    if (!allowed.includes(name)) {
      const known = allowed.length === 0 ? 'this route takes no query parameters' : `this route takes ${allowed.join(', ')}`;
      throw new AttacheError('invalid_query', `unknown query parameter ${JSON.stringify(name)}: ${known}`);
    }
    if (seen.has(name)) throw new AttacheError('invalid_query', `query parameter ${JSON.stringify(name)} is given more than once`);
    seen.add(name);
  }
}

/** HEAD of a small JSON route: the GET answer's status and headers (with its length), without the body. */
function headOf(get: RouteFunction): RouteFunction {
  return async (context) => {
    const response = await get(context);
    const headers = new Headers(response.headers);
    headers.set('Content-Length', String((await response.arrayBuffer()).byteLength));
    return new Response(null, { status: response.status, headers });
  };
}

async function acquire({ request, store, authorize }: RouteContext): Promise<Response> {
  const params = parseAcquireBody(await readJsonObject(request));
  const denied = await authorize('acquire', params);
  if (denied) return denied;
  const lease = await store.acquire({
    namespace: params.namespace,
    key: params.key,
    owner: params.owner,
    ttlSeconds: params.ttlSeconds,
    blockSeconds: params.blockSeconds,
    ...(params.txnId === undefined ? {} : { txnId: params.txnId }),
    // A client that hangs up stops waiting for the key.
    signal: request.signal,
  });
  return jsonResponse(leaseToJson(lease));
}

async function keepalive({ request, store, authorize }: RouteContext): Promise<Response> {
  const { credentials, ttlSeconds } = parseKeepaliveBody(await readJsonObject(request), request.headers);
  const denied = await authorize('keepalive', credentials);
  if (denied) return denied;
  const info = await store.lease(credentials).keepalive({ ttlSeconds });
  return jsonResponse({ expires_at_unix: unixSeconds(info.expiresAt), fencing_token: info.fencingToken });
}

async function release({ request, store, authorize }: RouteContext): Promise<Response> {
  const { credentials, rollback } = parseReleaseBody(await readJsonObject(request), request.headers);
  const denied = await authorize('release', credentials);
  if (denied) return denied;
  await store.lease(credentials).release({ rollback });
  return jsonResponse({ released: true });
}

async function upload(context: RouteContext): Promise<Response> {
  const { request, url, authorize } = context;
  const body = request.body ? requestBodyOf(request.body) : undefined;
  let response: Response;
  try {
    const params = parseUploadParams(request, url);
    // A document upload has no key; the hook still sees the namespace it goes to.
    const documentScope = params.documentNamespace === undefined ? undefined : { namespace: params.documentNamespace };
    const denied = await authorize('upload', params.scope ?? documentScope);
    if (denied) {
      response = denied;
    } else {
      const releaseSlot = context.uploadSlots.take();
      try {
        response = await storeUpload(context, params, body?.stream ?? null);
      } finally {
        releaseSlot();
      }
    }
  } catch (error) {
    response = errorResponse(error, { quiet: request.signal.aborted });
  }
  // Answered before the body ended (an error, a no-op): the client may still
  // be sending, so this connection cannot carry another request.
  return body && !body.readToEnd() ? withHeader(response, 'Connection', 'close') : response;
}

/** Sets a header, copying the response first when its headers are immutable (a hook's `Response.redirect()`). */
function withHeader(response: Response, name: string, value: string): Response {
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set(name, value);
    return copy;
  }
}

async function storeUpload(
  { request, store }: RouteContext,
  params: UploadParams,
  body: ReadableStream<Uint8Array> | null,
): Promise<Response> {
  if (params.credentials === undefined) {
    // Document face: each upload becomes its own committed attachment, in
    // the `namespace` asked for (else the store's document namespace).
    const documents = params.documentNamespace === undefined ? {} : { namespace: params.documentNamespace };
    if (params.multipart) {
      const { attachments } = await storeFormUpload(request, store, formOptions(params), body);
      return jsonResponse({ attachments: attachments.map(attachmentToJson) }, { headers: singleIdHeader(attachments) });
    }
    const document = rawDocumentUpload(request, params, body);
    if (params.documentId !== undefined) document.id = params.documentId;
    const [attachment] = await store.createDocuments([document], documents);
    if (attachment === undefined) throw new Error('createDocuments returned no attachment for one upload');
    return jsonResponse({ attachment: attachmentToJson(attachment) }, { headers: { 'X-Attachment-ID': attachment.id } });
  }

  const lease = store.lease(params.credentials);
  const fencingHeader = { [FENCING_TOKEN_HEADER]: String(params.credentials.fencingToken) };
  if (params.multipart) {
    const result = await storeFormUpload(request, store, formOptions(params), body);
    return jsonResponse(
      { attachments: result.attachments.map(attachmentToJson), noop: result.noop },
      { headers: { ...fencingHeader, ...singleIdHeader(result.attachments) } },
    );
  }
  const result = await lease.attach({ ...rawDocumentUpload(request, params, body), preventOverwrite: params.preventOverwrite });
  return jsonResponse(
    { attachment: attachmentToJson(result.attachment), noop: result.noop },
    { headers: { ...fencingHeader, 'X-Attachment-ID': result.attachment.id } },
  );
}

/** A raw body: one upload named by the query. */
function rawDocumentUpload(request: Request, params: UploadParams, body: ReadableStream<Uint8Array> | null): DocumentUpload {
  if (params.name === undefined) throw new AttacheError('missing_name', 'name is required for a raw upload');
  const upload: DocumentUpload = {
    name: params.name,
    // A bodiless POST is an empty attachment.
    body: body ?? new Uint8Array(0),
    contentType: resolveRawContentType(params.contentType, params.requestContentType),
    signal: request.signal,
  };
  if (params.maxBytes !== undefined) upload.maxBytes = params.maxBytes;
  if (params.expectedSize !== undefined) upload.expectedSize = params.expectedSize;
  if (params.expectedCrc32 !== undefined) upload.expectedCrc32 = params.expectedCrc32;
  if (params.expectedSha256 !== undefined) upload.expectedSha256 = params.expectedSha256;
  return upload;
}

/**
 * A form: every file part is one upload. The query's `name` names the first
 * file part only (names must stay unique); its `content_type` applies to
 * every part, its `max_bytes` to each.
 */
function formOptions(params: UploadParams): FormUploadOptions {
  const options: FormUploadOptions = { preventOverwrite: params.preventOverwrite };
  if (params.credentials !== undefined) options.lease = params.credentials;
  if (params.documentNamespace !== undefined) options.documentNamespace = params.documentNamespace;
  if (params.name !== undefined) options.name = params.name;
  if (params.contentType !== undefined) options.contentType = params.contentType;
  if (params.maxBytes !== undefined) options.maxBytes = params.maxBytes;
  return options;
}

function singleIdHeader(attachments: readonly { id: string }[]): Record<string, string> {
  return attachments.length === 1 ? { 'X-Attachment-ID': attachments[0]!.id } : {};
}

async function listAttachments({ request, url, store, authorize }: RouteContext): Promise<Response> {
  const { scope, credentials } = parseListParams(request, url, 'optional');
  const denied = await authorize('list', scope);
  if (denied) return denied;
  const attachments = credentials ? await store.lease(credentials).list() : await store.listAttachments(scope);
  return jsonResponse({ namespace: scope.namespace, key: scope.key, attachments: attachments.map(attachmentToJson) });
}

async function download({ request, url, store, authorize }: RouteContext): Promise<Response> {
  const { scope, selector, credentials } = parseSelectorParams(request, url, 'optional');
  if (scope === undefined && !credentials) {
    // A read by id alone: the hook decides on the key the attachment lives
    // under, so it can guard tenants; an unknown id is still a plain 404.
    const id = selector.id!;
    const attachment = await store.getAttachment({ id });
    const denied = await authorize('download', { namespace: attachment.namespace, key: attachment.key });
    if (denied) return denied;
    return serveDownload(request, {
      get: async () => attachment,
      open: (options) => store.openAttachment({ id }, options),
      leaseRead: false,
    });
  }
  const denied = await authorize('download', scope);
  if (denied) return denied;

  let source: AttachmentSource;
  if (credentials) {
    const lease: Lease = store.lease(credentials);
    source = { get: () => lease.get(selector), open: (options) => lease.open(selector, options), leaseRead: true };
  } else if (scope === undefined) {
    throw new AttacheError('missing_key', 'key is required');
  } else if (selector.id !== undefined) {
    const id = selector.id;
    source = {
      // getAttachment by id is not scoped to a key; the scoped open is.
      get: async () => {
        const attachment = await store.getAttachment({ id });
        if (attachment.namespace !== scope.namespace || attachment.key !== scope.key) {
          throw new AttacheError('attachment_not_found', 'no attachment with this id under this key');
        }
        return attachment;
      },
      open: (options) => store.openAttachment({ ...scope, id }, options),
      leaseRead: false,
    };
  } else {
    const named = { ...scope, name: selector.name };
    source = {
      get: () => store.getAttachment(named),
      open: (options) => store.openAttachment(named, options),
      leaseRead: false,
    };
  }
  return serveDownload(request, source);
}

async function deleteAttachment({ request, url, store, authorize }: RouteContext): Promise<Response> {
  const { scope, selector, credentials } = parseSelectorParams(request, url, 'required');
  const denied = await authorize('delete', scope);
  if (denied) return denied;
  if (credentials === undefined) throw new AttacheError('missing_lease', 'deleting needs a lease');
  const { deleted } = await store.lease(credentials).delete(selector);
  return jsonResponse({ deleted });
}

async function deleteAllAttachments({ request, url, store, authorize }: RouteContext): Promise<Response> {
  const { scope, credentials } = parseListParams(request, url, 'required');
  const denied = await authorize('delete', scope);
  if (denied) return denied;
  if (credentials === undefined) throw new AttacheError('missing_lease', 'deleting needs a lease');
  const { deleted } = await store.lease(credentials).deleteAll();
  return jsonResponse({ deleted });
}

async function healthz(): Promise<Response> {
  return jsonResponse({ ok: true });
}

async function openapi({ basePath, bearerAuth }: RouteContext): Promise<Response> {
  return jsonResponse(buildOpenApiDocument({ basePath, bearerAuth }));
}
