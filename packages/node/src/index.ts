export { toWebRequest, webHeaders, ClientDisconnectedError, type ToWebRequestOptions } from './request.js';
export { sendWebResponse } from './response.js';
export { readableToWebStream, type ReadableToWebOptions } from './stream.js';
export { toNodeListener, type FetchHandler } from './listener.js';
export { nodeFetch } from './fetch.js';
