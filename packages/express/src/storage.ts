// `attacheStorage()`: a multer StorageEngine that streams each uploaded file
// into attache — as a committed document (no lease), or staged under the
// lease a request carries. Each file goes through core's in-app upload entry
// (`storeFormFiles`), which checks it (field, count, name, size) and words
// every refusal; the engine only converts multer's file and undoes it.
//
// Multer's own clean-up only covers files whose engine finished. Here a file
// cut short (limits.fileSize, a client abort, a broken form) errors the body
// the engine reads, so the engine itself keeps nothing of it; `_removeFile`
// then undoes the files of the same request that did finish.
import type { Readable } from 'node:stream';
import {
  AttacheError,
  formFilesSeen,
  isAttacheError,
  leaseFromRequest,
  storeFormFiles,
  type Attachment,
  type AttachmentRef,
  type AttachmentStore,
  type FormFilesSeen,
  type LeaseCredentials,
} from '@attache/core';
import { readableToWebStream, webHeaders } from '@attache/node';
import type { Request as ExpressRequest } from 'express';

/** What multer hands a storage engine for each file part. */
export interface MulterIncomingFile {
  fieldname: string;
  originalname: string;
  encoding: string;
  mimetype: string;
  stream: Readable;
}

/** What attache adds to multer's file object (`req.file`, `req.files`). */
export interface AttacheFileInfo {
  /** Attachment id (UUIDv7). */
  id: string;
  /** `attachment://<id>`. */
  ref: AttachmentRef;
  /** Attachment name under its key. */
  name: string;
  namespace: string;
  key: string;
  size: number;
  /** CRC-32, 8 lowercase hex digits. */
  crc32: string;
  /** SHA-256, 64 lowercase hex digits. */
  sha256: string;
  contentType: string;
  /** True when staged under a lease (visible to everyone once the lease is released); false for a committed document. */
  staged: boolean;
  /** True when the name already had a version (committed or staged) that this upload replaced. */
  replaced: boolean;
  attachment: Attachment;
}

export type AttacheMulterFile = MulterIncomingFile & AttacheFileInfo;

export interface AttacheStorageOptions {
  store: AttachmentStore;
  /** The lease to stage files under; none (the default) makes each file a committed document. */
  lease?: (req: ExpressRequest) => LeaseCredentials | undefined;
  /** Namespace for lease credentials that name none (default: the store's default namespace). */
  namespace?: string;
  /** The leased key to stage a file under, when it is not the credentials' own key. */
  key?: (req: ExpressRequest, file: MulterIncomingFile) => string;
  /** Attachment name (default: the file's original name). */
  name?: (req: ExpressRequest, file: MulterIncomingFile) => string;
  /** Per-file limit in bytes, on top of the store's own. Past it: 413 `attachment_too_large`, nothing kept of the file. */
  maxBytes?: number;
  /** The form field that holds the files; a file in another field is refused (`invalid_body`, as core words it). Default: any. */
  field?: string;
  /** Most files per request; one more is refused (`invalid_body`). Default: no limit. */
  maxFiles?: number;
}

export interface AttacheStorageEngine {
  _handleFile(req: ExpressRequest, file: MulterIncomingFile, callback: (error?: unknown, info?: Partial<AttacheFileInfo>) => void): void;
  _removeFile(req: ExpressRequest, file: MulterIncomingFile & Partial<AttacheFileInfo>, callback: (error: Error | null) => void): void;
}

/** How to undo a stored file; a symbol key survives multer's `{ ...file, ...info }` copy but stays out of JSON. */
const UNDO = Symbol('attache.undo');
type Undo = () => Promise<void>;

/**
 * Lease credentials from the lease headers of the request (`X-Lease-ID`,
 * `X-Txn-ID`, `X-Fencing-Token`) and the key and namespace from the query
 * (`?key=…&namespace=…`), as attache's own HTTP API sends them (core's
 * `leaseFromRequest`). Undefined when no lease header is present; a partial
 * set throws the precise error.
 */
export function leaseFromHeaders(req: ExpressRequest): LeaseCredentials | undefined {
  return leaseFromRequest(webHeaders(req), req.originalUrl ?? req.url ?? '/');
}

/** Errors this engine raised, so that `attacheUpload` tells them from multer's and busboy's form errors. */
export const ENGINE_ERRORS = new WeakSet<object>();

/** What the requests in flight have sent so far: core's `maxFiles` and unique names hold per request. */
const seenByRequest = new WeakMap<object, FormFilesSeen>();

export function attacheStorage(options: AttacheStorageOptions): AttacheStorageEngine {
  const { store } = options;

  async function handleFile(req: ExpressRequest, file: MulterIncomingFile): Promise<AttacheFileInfo & { [UNDO]: Undo }> {
    const credentials = options.lease?.(req);
    const lease =
      credentials === undefined
        ? undefined
        : { ...credentials, namespace: credentials.namespace ?? options.namespace, key: options.key?.(req, file) ?? credentials.key };
    const name = options.name?.(req, file) ?? file.originalname;
    // Reported to the app (`file.replaced`): the upload overwrites a visible version.
    const replaced = lease === undefined ? false : await isVisible(store, lease, name);
    let seen = seenByRequest.get(req);
    if (seen === undefined) seenByRequest.set(req, (seen = formFilesSeen()));
    const formFile = { name, field: file.fieldname, contentType: file.mimetype || undefined, body: fileBody(file) };
    const { field, maxFiles, maxBytes } = options;
    const { attachments, staged } = await storeFormFiles(store, [formFile], { lease, field, maxFiles, maxBytes }, seen);
    const attachment = attachments[0]!;
    // Taking back a staged write shows the committed version (if any) again; a document is deleted.
    const undo: Undo = staged
      ? () => store.lease(lease!).unstage({ id: attachment.id }).then(() => undefined)
      : () => store.deleteDocument(attachment.id).then(() => undefined);
    return { ...describe(attachment, staged, replaced), [UNDO]: undo };
  }

  return {
    _handleFile(req, file, callback) {
      handleFile(req, file).then(
        (info) => callback(null, info),
        (error: unknown) => {
          if (typeof error === 'object' && error !== null) ENGINE_ERRORS.add(error);
          callback(error);
        },
      );
    },
    _removeFile(_req, file, callback) {
      const undo = (file as { [UNDO]?: Undo })[UNDO];
      if (undo === undefined) {
        // Nothing was stored for this file (the engine discarded it).
        callback(null);
        return;
      }
      undo().then(
        () => callback(null),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    },
  };
}

async function isVisible(store: AttachmentStore, lease: LeaseCredentials, name: string): Promise<boolean> {
  try {
    await store.lease(lease).get({ name });
    return true;
  } catch (error) {
    if (isAttacheError(error, 'attachment_not_found')) return false;
    throw error;
  }
}

/**
 * The file's bytes as a Web stream that fails — instead of ending short —
 * when busboy truncates the file at `limits.fileSize`, or when the file
 * stream is destroyed (client abort, broken form).
 */
function fileBody(file: MulterIncomingFile): ReadableStream<Uint8Array> {
  const limit = new AbortController();
  const tooLarge = () => new AttacheError('attachment_too_large', `file "${file.originalname}" exceeds the upload size limit`);
  if ((file.stream as Readable & { truncated?: boolean }).truncated) limit.abort(tooLarge());
  else file.stream.once('limit', () => limit.abort(tooLarge()));
  return readableToWebStream(file.stream, {
    failWith: limit.signal,
    cutShort: () => new AttacheError('invalid_body', `file "${file.originalname}" ended before it was complete`),
  });
}

function describe(attachment: Attachment, staged: boolean, replaced: boolean): AttacheFileInfo {
  return {
    id: attachment.id,
    ref: `attachment://${attachment.id}`,
    name: attachment.name,
    namespace: attachment.namespace,
    key: attachment.key,
    size: attachment.size,
    crc32: attachment.crc32,
    sha256: attachment.sha256,
    contentType: attachment.contentType,
    staged,
    replaced,
    attachment,
  };
}
