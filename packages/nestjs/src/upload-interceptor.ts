// Uploads in the application's own routes:
//
//   @Post('avatar')
//   @UseInterceptors(AttacheFileInterceptor({ field: 'file' }))
//   upload(@UploadedAttachment() attachment: Attachment) { … }
//
// The interceptor streams the form's file part straight into the store (the
// request body is pulled as the store writes, never buffered whole), then
// hands the resulting `Attachment` to the route. Without lease headers the
// file becomes a document attachment, committed at once under its own id;
// with `X-Lease-ID`/`X-Txn-ID`/`X-Fencing-Token` it is staged under that
// lease (key and namespace from the query, or from `options.scope`) and
// commits when the lease is released. A failed or aborted upload keeps nothing.
import type { ServerResponse } from 'node:http';
import {
  AttacheError,
  checkKey,
  checkName,
  checkNamespace,
  errorBody,
  hasLeaseHeaders,
  isAttacheError,
  parseMultipartUploads,
  readLeaseHeaders,
  reportingEnvelopeFailure,
  type AttachOptions,
  type Attachment,
  type AttachmentStore,
  type LeaseCredentials,
  type MultipartUpload,
  type MultipartUploads,
} from '@attache/core';
import { toWebRequest } from '@attache/node';
import {
  HttpException,
  Inject,
  Injectable,
  createParamDecorator,
  mixin,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
  type Type,
} from '@nestjs/common';
import type { Observable } from 'rxjs';
import type { ExpressRequest } from './attache-http.js';
import { ATTACHE_STORE } from './tokens.js';

export interface AttacheFileInterceptorOptions {
  /** Form field holding the file (default `file`). Other parts are read past and dropped. */
  field?: string;
  /** Largest file accepted, in bytes; capped by the store's own limit. Past it: 413, nothing kept. */
  maxBytes?: number;
  /**
   * Key (and namespace) of a leased upload. Default: the `key` and
   * `namespace` query parameters, as on attache's own routes.
   */
  scope?: (request: ExpressRequest) => { namespace?: string; key: string };
}

const uploaded = new WeakMap<object, Attachment>();

/** An interceptor class storing the file of `options.field` (needs `AttacheModule` in scope). */
export function AttacheFileInterceptor(options: AttacheFileInterceptorOptions = {}): Type<NestInterceptor> {
  @Injectable()
  class AttacheFileUpload implements NestInterceptor {
    constructor(@Inject(ATTACHE_STORE) private readonly store: AttachmentStore) {}

    async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
      const http = context.switchToHttp();
      const req = http.getRequest<ExpressRequest>();
      uploaded.set(req, await storeFormFile(this.store, req, http.getResponse<ServerResponse>(), options));
      return next.handle();
    }
  }
  return mixin(AttacheFileUpload);
}

/** The `Attachment` that `AttacheFileInterceptor` stored for this request. */
export const UploadedAttachment = createParamDecorator((_data: unknown, context: ExecutionContext): Attachment => {
  const attachment = uploaded.get(context.switchToHttp().getRequest<object>());
  if (attachment === undefined) {
    throw new Error('@UploadedAttachment() needs @UseInterceptors(AttacheFileInterceptor(...)) on the same route');
  }
  return attachment;
});

async function storeFormFile(
  store: AttachmentStore,
  req: ExpressRequest,
  res: ServerResponse,
  options: AttacheFileInterceptorOptions,
): Promise<Attachment> {
  const request = toWebRequest(req, res);
  try {
    const mediaType = (request.headers.get('Content-Type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (mediaType !== 'multipart/form-data') throw new AttacheError('invalid_body', 'expected a multipart/form-data upload');
    const credentials = leaseCredentialsOf(req, request, options);
    const uploads = parseMultipartUploads(request);
    const parts = fieldFile(uploads, options.field ?? 'file', options.maxBytes, request.signal);
    const attachments = await reportingEnvelopeFailure(uploads, async () =>
      credentials === undefined
        ? store.createDocuments(parts)
        : (await store.lease(credentials).attachAll(parts)).attachments,
    );
    const [attachment] = attachments;
    if (attachment === undefined) throw new Error('the store returned no attachment for one file');
    return attachment;
  } catch (error) {
    throw toHttpException(error, request.signal);
  }
}

function leaseCredentialsOf(
  req: ExpressRequest,
  request: Request,
  options: AttacheFileInterceptorOptions,
): LeaseCredentials | undefined {
  if (!hasLeaseHeaders(request.headers)) return undefined;
  const query = new URL(request.url).searchParams;
  const scope = options.scope?.(req) ?? { namespace: query.get('namespace') || undefined, key: query.get('key') ?? '' };
  if (!scope.key) throw new AttacheError('missing_key', 'a leased upload needs the key of its lease');
  return {
    namespace: checkNamespace(scope.namespace),
    key: checkKey(scope.key),
    ...readLeaseHeaders(request.headers),
  };
}

/**
 * The upload of the first file part in `field`; every other part is
 * discarded unread. The iteration runs to the closing boundary before the
 * store commits, so a malformed envelope after the file still keeps nothing.
 */
async function* fieldFile(
  uploads: MultipartUploads,
  field: string,
  maxBytes: number | undefined,
  signal: AbortSignal,
): AsyncGenerator<AttachOptions> {
  let found = false;
  for await (const part of uploads) {
    if (found || !isInField(part, field)) {
      await part.body.cancel();
      continue;
    }
    found = true;
    const upload: AttachOptions = {
      name: checkName(part.name),
      body: part.body,
      contentType: part.contentType ?? 'application/octet-stream',
      signal,
    };
    if (maxBytes !== undefined) upload.maxBytes = maxBytes;
    yield upload;
  }
  if (!found) throw new AttacheError('invalid_body', `the form has no file in field "${field}"`);
}

function isInField(part: MultipartUpload, field: string): boolean {
  return part.field === field;
}

/** `AttacheError` → an `HttpException` with attache's error body, so the app's filters see a normal HTTP error. */
function toHttpException(error: unknown, signal: AbortSignal): unknown {
  if (error instanceof HttpException) return error;
  if (isAttacheError(error)) {
    return new HttpException(errorBody(error), error.status, { cause: error });
  }
  if (signal.aborted) {
    return new HttpException({ error: 'invalid_body', detail: 'the client closed the upload' }, 400, { cause: error });
  }
  return error;
}
