// `attacheStorage()`: a multer StorageEngine that streams each uploaded file
// into attache — as a committed document (no lease), or staged under the
// lease a request carries.
//
// Multer's own clean-up only covers files whose engine finished. Here a file
// cut short (limits.fileSize, a client abort, a broken form) errors the body
// the engine reads, so the engine itself keeps nothing of it; `_removeFile`
// then undoes the files of the same request that did finish.
import type { Readable } from 'node:stream';
import {
  AttacheError,
  isAttacheError,
  readLeaseHeaders,
  hasLeaseHeaders,
  type Attachment,
  type AttachmentRef,
  type AttachmentStore,
  type DocumentUpload,
  type LeaseCredentials,
} from '@attache/core';
import { readableToWebStream } from '@attache/node';
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
  /** Per-file limit in bytes, on top of the store's own. Prefer multer's `limits.fileSize`, which names the error. */
  maxBytes?: number;
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
 * (`?key=…&namespace=…`), as attache's own HTTP API sends them. Undefined
 * when no lease header is present; a partial set throws the precise error.
 */
export function leaseFromHeaders(req: ExpressRequest): LeaseCredentials | undefined {
  const headers = new Headers();
  for (const name of ['x-lease-id', 'x-txn-id', 'x-fencing-token']) {
    const value = req.headers[name];
    if (typeof value === 'string') headers.set(name, value);
  }
  if (!hasLeaseHeaders(headers)) return undefined;
  const values = readLeaseHeaders(headers);
  const key = queryString(req, 'key');
  if (key === undefined) throw new AttacheError('missing_key', 'key is required with a lease');
  const namespace = queryString(req, 'namespace');
  return { ...values, key, ...(namespace === undefined ? {} : { namespace }) };
}

function queryString(req: ExpressRequest, name: string): string | undefined {
  const value = new URL(req.originalUrl ?? req.url ?? '/', 'http://query.local').searchParams.get(name);
  return value === null || value === '' ? undefined : value;
}

export function attacheStorage(options: AttacheStorageOptions): AttacheStorageEngine {
  const { store } = options;

  async function handleFile(req: ExpressRequest, file: MulterIncomingFile): Promise<AttacheFileInfo & { [UNDO]: Undo }> {
    const credentials = options.lease?.(req);
    const name = options.name?.(req, file) ?? file.originalname;
    const upload = (): DocumentUpload => {
      const document: DocumentUpload = { name, body: fileBody(file), contentType: file.mimetype || 'application/octet-stream' };
      if (options.maxBytes !== undefined) document.maxBytes = options.maxBytes;
      return document;
    };

    if (credentials === undefined) {
      const [attachment] = await store.createDocuments([upload()]);
      if (attachment === undefined) throw new Error('createDocuments returned no attachment for one upload');
      return { ...describe(attachment, false, false), [UNDO]: () => deleteDocument(store, attachment) };
    }

    const lease = store.lease({
      ...credentials,
      namespace: credentials.namespace ?? options.namespace,
      key: options.key?.(req, file) ?? credentials.key,
    });
    // Reported to the app (`file.replaced`): the upload overwrites a visible version.
    const replaced = await lease.get({ name }).then(
      () => true,
      (error: unknown) => {
        if (isAttacheError(error, 'attachment_not_found')) return false;
        throw error;
      },
    );
    const { attachment } = await lease.attach(upload());
    // Taking back this staged write shows the committed version (if any) again.
    const undo: Undo = () => lease.unstage({ id: attachment.id }).then(() => undefined);
    return { ...describe(attachment, true, replaced), [UNDO]: undo };
  }

  return {
    _handleFile(req, file, callback) {
      handleFile(req, file).then(
        (info) => callback(null, info),
        (error: unknown) => callback(error),
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

/** Documents cannot be leased by callers; the engine deletes one for us. */
async function deleteDocument(store: AttachmentStore, attachment: Attachment): Promise<void> {
  await store.deleteDocument(attachment.id);
}
