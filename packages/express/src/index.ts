export { attache, type AttacheRouter, type AttacheRouterOptions } from './router.js';
export {
  attacheStorage,
  leaseFromHeaders,
  type AttacheFileInfo,
  type AttacheMulterFile,
  type AttacheStorageEngine,
  type AttacheStorageOptions,
  type MulterIncomingFile,
} from './storage.js';
export { attacheErrorHandler, attacheUpload, type AttacheUploadRequest, type MulterFactory } from './upload.js';
