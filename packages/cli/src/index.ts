export {
  ConfigError,
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_INLINE_BLOB_MAX_BYTES,
  DEFAULT_PORT,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_SWEEP_INTERVAL_SECONDS,
  describeStorage,
  parseCommandLine,
  resolveServeConfig,
  S3_VARIABLES,
} from './config.js';
export type { BlobBackend, CliCommand, Environment, MetadataBackend, ParseContext, ServeConfig } from './config.js';
export { BASE_PATH, serve } from './serve.js';
export type { RunningServer } from './serve.js';
export { cliVersion } from './version.js';
