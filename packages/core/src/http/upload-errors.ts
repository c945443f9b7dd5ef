// The mistakes of a form upload, worded once. Core's own routes, the in-app
// upload entry and the adapters that parse forms with their framework's tools
// (multer) raise these, so every mount answers a mistake with the same
// status, code and message.
import { AttacheError } from '../errors.js';

/** The request is not a `multipart/form-data` form at all. */
export function notAFormError(contentType: string | null | undefined): AttacheError {
  const sent = contentType ? `Content-Type ${JSON.stringify(contentType)}` : 'no Content-Type';
  return new AttacheError('invalid_body', `this upload takes a multipart/form-data form; the request has ${sent}`);
}

/** A form whose `Content-Type` has no boundary, so its parts cannot be found. */
export function missingBoundaryError(): AttacheError {
  return new AttacheError('invalid_body', 'Content-Type multipart/form-data needs a boundary parameter');
}

/** A form with no file part (only text fields, or nothing). */
export function noFileError(field: string | undefined): AttacheError {
  return new AttacheError('invalid_body', field === undefined ? 'the form has no file' : `the form has no file in field "${field}"`);
}

/** A file sent in a field the upload does not take. */
export function unexpectedFieldError(field: string, expected: string): AttacheError {
  return new AttacheError('invalid_body', `the form has a file in field "${field}"; this upload takes its file in field "${expected}"`);
}

/** More files than the upload takes. */
export function tooManyFilesError(maxFiles: number): AttacheError {
  return new AttacheError('invalid_body', `this upload takes at most ${maxFiles} file${maxFiles === 1 ? '' : 's'}`);
}

/** Two files of one upload under one name (the later would silently replace the earlier). */
export function duplicateNameError(name: string): AttacheError {
  return new AttacheError('invalid_name', `two parts of this upload are named ${JSON.stringify(name)}; names must be unique`);
}
