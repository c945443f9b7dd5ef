export { AttacheModule } from './attache-module.js';
export { ATTACHE_CONFIG, ATTACHE_STORE, InjectAttacheStore } from './tokens.js';
export type {
  AttacheModuleAsyncOptions,
  AttacheModuleOptions,
  AttacheModuleStaticOptions,
  AttacheStoreConfig,
} from './options.js';
export { AttacheFileInterceptor, UploadedAttachment, type AttacheFileInterceptorOptions } from './upload-interceptor.js';
export type { ExpressRequest } from './attache-http.js';
