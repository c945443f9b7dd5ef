// Form uploads in the app's own routes. `attacheUpload(multer, options)`:
// multer parses the form, `attacheStorage` streams each file into attache
// through core's in-app upload entry, and whatever is wrong with the form is
// the AttacheError core words for it. `attacheErrorHandler` answers errors
// with core's error mapper: the same status, code and message as every
// other mount.
import { AttacheError, errorAnswer, isAttacheError, noFileError, requireForm } from '@attache/core';
import { webHeaders } from '@attache/node';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { attacheStorage, ENGINE_ERRORS, type AttacheMulterFile, type AttacheStorageEngine, type AttacheStorageOptions } from './storage.js';

/** The part of multer's default export used here (pass `multer` itself): no runtime dependency on multer. */
export type MulterFactory = (options: { storage: AttacheStorageEngine }) => { any(): RequestHandler };

/** What `attacheUpload` leaves on the request: multer's `req.files`, and the first of them as `req.file`. */
export interface AttacheUploadRequest {
  file?: AttacheMulterFile;
  files?: AttacheMulterFile[];
}

/**
 * Stores the files of a `multipart/form-data` request (field `options.field`,
 * at most `options.maxFiles`, each up to `options.maxBytes`) and calls the
 * next handler with `req.file`/`req.files` set, or `next(error)` with an
 * `AttacheError`: not a form, no file, a file in another field, one file too
 * many, a file too large, a malformed form. A failed request keeps nothing.
 */
export function attacheUpload(multer: MulterFactory, options: AttacheStorageOptions): RequestHandler {
  const parseForm = multer({ storage: attacheStorage(options) }).any();
  return (req, res, next) => {
    try {
      // multer passes anything but a form through untouched; core names the mistake.
      requireForm(webHeaders(req));
    } catch (error) {
      next(error);
      return;
    }
    parseForm(req, res, (error?: unknown) => {
      if (error !== undefined && error !== null) {
        next(formError(error));
        return;
      }
      const uploaded = req as unknown as AttacheUploadRequest;
      const first = uploaded.files?.[0];
      if (first === undefined) {
        next(noFileError(options.field));
        return;
      }
      uploaded.file = first;
      next();
    });
  };
}

/** An error of multer's stage: the engine's own as they are; multer's and busboy's (a broken form) as `invalid_body`. */
function formError(error: unknown): unknown {
  if (isAttacheError(error) || (typeof error === 'object' && error !== null && ENGINE_ERRORS.has(error))) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new AttacheError('invalid_body', `the form could not be read: ${message}`, { cause: error });
}

/** Answers any error with core's error mapper (an `AttacheError` as API.md §3 says; anything else as a generic 500). */
export const attacheErrorHandler: ErrorRequestHandler = (error: unknown, req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  const { status, headers, text } = errorAnswer(error, { quiet: req.destroyed });
  res.status(status).set(headers).end(text);
};
