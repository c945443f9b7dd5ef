// The example's settings, read from the environment when the server starts
// handling requests (never at build time: `next build` must not need them).

/** Default upload limit: small on purpose, so that the 413 path is easy to see. */
export const DEFAULT_MAX_BYTES = 5 * 1024 * 1024;

export interface ExampleConfig {
  /** Holds `attache.db` and `blobs/`. `ATTACHE_DATA_DIR`, default `./.attache-next`. */
  dataDir: string;
  /** The store's per-attachment limit in bytes. `ATTACHE_MAX_BYTES`, default 5 MiB. */
  maxBytes: number;
}

export function readConfig(env: Record<string, string | undefined> = process.env): ExampleConfig {
  return {
    dataDir: env['ATTACHE_DATA_DIR'] || '.attache-next',
    maxBytes: parseMaxBytes(env['ATTACHE_MAX_BYTES']),
  };
}

function parseMaxBytes(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_MAX_BYTES;
  const bytes = Number(text);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new Error(`ATTACHE_MAX_BYTES must be a positive integer, got "${text}"`);
  return bytes;
}
