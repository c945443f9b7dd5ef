export { createHandler } from './handler.js';
export { routeTakesJsonBody } from './routes.js';
export type { AttacheHandler, AuthorizeContext, AuthorizeHook, HandleOptions, HandlerAction, HandlerOptions } from './handler.js';
export { checkCorsOptions, parseCorsOrigins, CORS_ALLOWED_HEADERS, CORS_ALLOWED_METHODS, CORS_EXPOSED_HEADERS, type CorsOptions } from './cors.js';
// In-app uploads (the application's own routes): the one entry, and the
// mistakes it refuses, for adapters that parse forms themselves (multer).
export {
  formFilesSeen,
  leaseFromRequest,
  requireForm,
  storeFormFiles,
  storeFormUpload,
  type FormFile,
  type FormFilesSeen,
  type FormUploadOptions,
  type FormUploadResult,
} from './in-app-upload.js';
export { duplicateNameError, missingBoundaryError, noFileError, notAFormError, tooManyFilesError, unexpectedFieldError } from './upload-errors.js';
export { parseMultipartUploads, reportingEnvelopeFailure, type MultipartUpload, type MultipartUploads } from './multipart.js';
export {
  FENCING_TOKEN_HEADER,
  LEASE_ID_HEADER,
  TXN_ID_HEADER,
  hasLeaseHeaders,
  readLeaseHeaders,
  type LeaseHeaderValues,
} from './params.js';
// The one error mapper (API.md §3): a Web Response, or its parts for frameworks that write the answer themselves.
export { errorAnswer, errorBody, errorResponse, type ErrorAnswer, type ErrorBody, type ErrorResponseOptions } from './errors.js';
export { attachmentToJson, type AttachmentJson, type LeaseJson } from './json.js';
