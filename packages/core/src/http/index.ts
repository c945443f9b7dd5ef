export { createHandler } from './handler.js';
export type { AttacheHandler, AuthorizeContext, AuthorizeHook, HandlerAction, HandlerOptions } from './handler.js';
