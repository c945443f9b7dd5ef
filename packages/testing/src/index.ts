export * from './blob-suite.js';
export * from './metadata-suite.js';
export * from './engine-suite.js';
export * from './postgres.js';
export { describeHttpContract, type ContractContext } from './contract/suite.js';
export type { ContractPorts, MountFn, MountOptions, MountedAttache } from './contract/harness.js';
export * from './example-app.js';
export * from './watched-blobs.js';
export * from './radosgw.js';
