export * from './blob-suite.js';
export * from './metadata-suite.js';
export * from './engine-suite.js';
export * from './key-rotation-suite.js';
export * from './seed-suite.js';
export * from './postgres.js';
export { describeExternalHttpContract, describeHttpContract } from './contract/suite.js';
export type { ContractContext, ContractSupport } from './contract/context.js';
export type { ContractPorts, ExternalServer, MountFn, MountOptions, MountedAttache } from './contract/harness.js';
export * from './example-app.js';
export * from './watched-blobs.js';
export {
  abortFormMidFile,
  describeInAppUploads,
  eventually,
  inAppMistakeAnswers,
  IN_APP_FIELD,
  IN_APP_MISTAKES,
  mistakeAnswerOf,
  sendInAppMistake,
  type InAppMistake,
  type InAppMountFn,
  type InAppMountOptions,
  type MistakeAnswer,
  type MountedInAppUpload,
} from './contract/in-app-uploads.js';
export * from './portability.js';
export * from './module-graph.js';
export * from './radosgw.js';
export * from './loopback-server.js';
export * from './chromium.js';
export * from './tus-suite.js';
export * from './memory-bounds.js';
export * from './parts.js';
export * from './tus-interop.js';
