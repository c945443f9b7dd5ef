export * from './seed.js';
export * from './errors.js';
export * from './ports.js';
export * from './types.js';
export * from './names.js';
