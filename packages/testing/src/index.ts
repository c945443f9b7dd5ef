export * from './blob-suite.js';
export * from './metadata-suite.js';
export * from './engine-suite.js';
export * from './postgres.js';
