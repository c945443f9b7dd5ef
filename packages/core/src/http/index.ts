export { createHandler } from './handler.js';
export type { AttacheHandler, AuthorizeContext, AuthorizeHook, HandleOptions, HandlerAction, HandlerOptions } from './handler.js';
// Building blocks for adapters that take uploads in their own routes
// (multer storage engine, NestJS interceptor).
export { parseMultipartUploads, reportingEnvelopeFailure, type MultipartUpload, type MultipartUploads } from './multipart.js';
export {
  FENCING_TOKEN_HEADER,
  LEASE_ID_HEADER,
  TXN_ID_HEADER,
  hasLeaseHeaders,
  readLeaseHeaders,
  type LeaseHeaderValues,
} from './params.js';
export { errorBody, type ErrorBody } from './errors.js';
export { attachmentToJson, type AttachmentJson, type LeaseJson } from './json.js';
