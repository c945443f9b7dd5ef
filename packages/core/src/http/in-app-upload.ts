// The in-app upload entry: a form posted to a route of the application's own
// (an avatar, a scanned receipt) streamed into the store — as committed
// documents, or staged under the caller's lease. Core's `POST /attachments`
// stores its forms through the same function, and the adapters are glue
// over it (the Nest interceptor calls `storeFormUpload`; the multer storage
// engine, whose framework parses the form, calls `storeFormFiles` per file),
// so every mount checks, stores and refuses a form the same way.
import { AttacheError } from '../errors.js';
import { checkKey, checkName, checkNamespace } from '../names.js';
import type { Attachment, AttachmentStore, AttachOptions, LeaseCredentials } from '../types.js';
import { parseMultipartUploads, reportingEnvelopeFailure, type MultipartUpload } from './multipart.js';
import { checkContentType, hasLeaseHeaders, readLeaseHeaders, requestMediaType } from './params.js';
import { duplicateNameError, missingBoundaryError, noFileError, notAFormError, tooManyFilesError, unexpectedFieldError } from './upload-errors.js';

/** One file of a form: its name (the filename), form field, declared type and bytes. */
export type FormFile = MultipartUpload;

export interface FormUploadOptions {
  /** The form field that holds the files; a file in any other field is refused (`invalid_body`). Default: any field. */
  field?: string;
  /** Most files one request may send; one more is refused (`invalid_body`). Default: no limit but the parser's. */
  maxFiles?: number;
  /** Largest file, in bytes, capped by the store's own limit. Past it: 413 `attachment_too_large`, nothing kept. */
  maxBytes?: number;
  /** Stage the files under this lease (they commit when it is released). Default: each file is a committed document. */
  lease?: LeaseCredentials;
  /** Namespace of document uploads (default: the store's document namespace). */
  documentNamespace?: string;
  /** Name of the first file, instead of its filename. */
  name?: string;
  /** Content type of every file, instead of each part's own. */
  contentType?: string;
  /** Leased uploads: a name that exists already is kept as is, its part unread. */
  preventOverwrite?: boolean;
  /** Cancels the upload (the client went away); nothing is kept. */
  signal?: AbortSignal;
}

export interface FormUploadResult {
  attachments: Attachment[];
  /** True when `preventOverwrite` kept every name as it was. */
  noop: boolean;
  /** True when staged under a lease, false for committed documents. */
  staged: boolean;
}

/**
 * What one request has sent so far. A host that hands over a request's files
 * one call at a time (multer calls its storage engine per file) passes the
 * same object to each `storeFormFiles` call, so `maxFiles` and unique names
 * hold for the request, not for each call.
 */
export interface FormFilesSeen {
  files: number;
  names: Set<string>;
}

export function formFilesSeen(): FormFilesSeen {
  return { files: 0, names: new Set() };
}

/**
 * Stores the files of a `multipart/form-data` request, streaming each part
 * into the store as it arrives. All files are kept or none is; a malformed
 * form, a file past `maxBytes`, a file in another field, one file too many or
 * a client that goes away keep nothing. Errors are `AttacheError`s (answer
 * them with `errorResponse` / `errorAnswer`). `body` replaces `request.body`.
 */
export async function storeFormUpload(
  request: Request,
  store: AttachmentStore,
  options: FormUploadOptions = {},
  body: ReadableStream<Uint8Array> | null = request.body,
): Promise<FormUploadResult> {
  requireForm(request.headers);
  const uploads = parseMultipartUploads(request, body);
  return reportingEnvelopeFailure(uploads, () => storeFormFiles(store, uploads, { signal: request.signal, ...options }));
}

/** Refuses a request that is not a `multipart/form-data` form (a malformed `Content-Type` is `invalid_content_type`). */
export function requireForm(headers: Headers): void {
  const mediaType = requestMediaType(headers);
  if (mediaType?.essence !== 'multipart/form-data') throw notAFormError(headers.get('Content-Type'));
  if (!mediaType.parameters.get('boundary')) throw missingBoundaryError();
}

/**
 * Checks and stores form files that the host parsed itself. Refuses a file in
 * another field than `options.field`, a file past `options.maxFiles`, a name
 * given twice, and a call with no file at all.
 */
export async function storeFormFiles(
  store: AttachmentStore,
  files: AsyncIterable<FormFile> | Iterable<FormFile>,
  options: FormUploadOptions = {},
  seen: FormFilesSeen = formFilesSeen(),
): Promise<FormUploadResult> {
  const uploads = checkedUploads(files, options, seen);
  if (options.lease === undefined) {
    const documents = options.documentNamespace === undefined ? {} : { namespace: options.documentNamespace };
    return { attachments: await store.createDocuments(uploads, documents), noop: false, staged: false };
  }
  return { ...(await store.lease(options.lease).attachAll(uploads)), staged: true };
}

/**
 * Lease credentials of an in-app upload: the lease headers (`X-Lease-ID`,
 * `X-Txn-ID`, `X-Fencing-Token`) with the key and namespace from `scope`, else
 * from the `key` and `namespace` query parameters, as on attache's own routes.
 * Undefined without lease headers (a document upload); a partial set throws
 * the precise error.
 */
export function leaseFromRequest(
  headers: Headers,
  url: string | URL,
  scope?: { namespace?: string | undefined; key: string },
): LeaseCredentials | undefined {
  if (!hasLeaseHeaders(headers)) return undefined;
  const query = new URL(url, 'http://in-app.invalid').searchParams;
  const key = scope === undefined ? query.get('key') : scope.key;
  if (!key) throw new AttacheError('missing_key', 'a leased upload needs the key of its lease');
  const namespace = scope === undefined ? query.get('namespace') || undefined : scope.namespace;
  return { namespace: checkNamespace(namespace), key: checkKey(key), ...readLeaseHeaders(headers) };
}

/**
 * The files as store uploads, checked as they arrive: a refused file stops
 * the upload before its bytes are read, and the store then removes the files
 * it stored before it.
 */
async function* checkedUploads(
  files: AsyncIterable<FormFile> | Iterable<FormFile>,
  options: FormUploadOptions,
  seen: FormFilesSeen,
): AsyncGenerator<AttachOptions> {
  const before = seen.files;
  for await (const file of files) {
    if (options.field !== undefined && file.field !== options.field) throw unexpectedFieldError(file.field, options.field);
    seen.files += 1;
    if (options.maxFiles !== undefined && seen.files > options.maxFiles) throw tooManyFilesError(options.maxFiles);
    const name = seen.files === 1 && options.name !== undefined ? options.name : checkName(file.name);
    // Under a key the later copy would silently replace the earlier one.
    if (seen.names.has(name)) throw duplicateNameError(name);
    seen.names.add(name);
    const partType = file.contentType === undefined ? undefined : checkContentType(file.contentType, `the Content-Type of part "${name}"`);
    const upload: AttachOptions = {
      name,
      body: file.body,
      contentType: options.contentType ?? partType ?? 'application/octet-stream',
    };
    if (options.maxBytes !== undefined) upload.maxBytes = options.maxBytes;
    if (options.lease !== undefined && options.preventOverwrite !== undefined) upload.preventOverwrite = options.preventOverwrite;
    if (options.signal !== undefined) upload.signal = options.signal;
    yield upload;
  }
  if (seen.files === before) throw noFileError(options.field);
}
