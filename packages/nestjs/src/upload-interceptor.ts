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
// Checking, storing and wording the mistakes is core's `storeFormUpload`;
// this file only converts the request and the error.
import type { ServerResponse } from 'node:http';
import { errorAnswer, leaseFromRequest, storeFormUpload, type Attachment, type AttachmentStore } from '@attache/core';
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
  /** Form field holding the file (default `file`). A file in another field, or a second file, is refused (`invalid_body`). */
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
      const res = http.getResponse<ServerResponse>();
      const request = toWebRequest(req, res);
      try {
        const lease = leaseFromRequest(request.headers, request.url, options.scope?.(req));
        const { attachments } = await storeFormUpload(request, this.store, {
          field: options.field ?? 'file',
          maxFiles: 1,
          ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
          ...(lease === undefined ? {} : { lease }),
        });
        uploaded.set(req, attachments[0]!);
      } catch (error) {
        throw toHttpException(error, res, request.signal.aborted);
      }
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

/**
 * Core's error answer as an `HttpException`, so the app's exception filters
 * see a normal HTTP error; its headers (`Retry-After`, `Cache-Control`) are
 * set on the response, which Nest's own answer keeps.
 */
function toHttpException(error: unknown, res: ServerResponse, quiet: boolean): HttpException {
  if (error instanceof HttpException) return error;
  const { status, headers, body } = errorAnswer(error, { quiet });
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== 'content-type' && !res.headersSent) res.setHeader(name, value);
  }
  return new HttpException(body, status, { cause: error });
}
