// Command line + environment → a validated command. Pure (no I/O beyond
// resolving paths against `cwd`) so every rule is unit-testable; bin.ts turns
// a `ConfigError` into its message, the usage text and exit code 2.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CRASH_POINTS, isCrashPoint, MAX_INLINE_BLOB_BYTES, parseCorsOrigins, type CorsOptions, type CrashPoint } from '@attache/core';

export const DEFAULT_PORT = 3000;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = './.attache';
/** A connection silent for this long is closed; an upload that stalls is then cut off and kept nowhere. */
export const DEFAULT_IDLE_TIMEOUT_SECONDS = 60;
/** The server sweeps this often unless ATTACHE_SWEEP_INTERVAL_SECONDS says otherwise. */
export const DEFAULT_SWEEP_INTERVAL_SECONDS = 30;
/** Blobs up to this size are kept in the metadata database (core's inline-blobs.ts). */
export const DEFAULT_INLINE_BLOB_MAX_BYTES = 64 * 1024;
/** Uploads streamed at once before new ones get 503 `unavailable` (each holds a file and a socket). */
export const DEFAULT_MAX_CONCURRENT_UPLOADS = 256;
/** Request line + headers (Node's own default): long query strings count here too. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** Key id recorded with objects encrypted under ATTACHE_MASTER_KEY unless ATTACHE_MASTER_KEY_ID names another. */
export const DEFAULT_MASTER_KEY_ID = 'k1';
/** How long SIGTERM waits for in-flight requests before closing their connections. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/** Every `ATTACHE_S3_*` variable `attache serve` understands; any other one is a configuration error. */
export const S3_VARIABLES = [
  'ATTACHE_S3_BUCKET',
  'ATTACHE_S3_ENDPOINT',
  'ATTACHE_S3_REGION',
  'ATTACHE_S3_PREFIX',
  'ATTACHE_S3_FORCE_PATH_STYLE',
  'ATTACHE_S3_ACCESS_KEY_ID',
  'ATTACHE_S3_SECRET_ACCESS_KEY',
] as const;

/** Where leases, transactions and attachment rows live. */
export type MetadataBackend =
  /** The embedded default: one file, one server process. */
  | { kind: 'sqlite'; filename: string }
  /** Shared by any number of server processes. `poolSize` undefined keeps `postgresMetadata`'s default (10). */
  | { kind: 'postgres'; connectionString: string; poolSize: number | undefined };

/** Where attachment bytes live. */
export type BlobBackend =
  | { kind: 'fs'; root: string }
  | {
      kind: 's3';
      bucket: string;
      /** Key prefix, empty or ending with "/". */
      prefix: string | undefined;
      endpoint: string | undefined;
      /** Undefined: the AWS SDK's chain (AWS_REGION, ~/.aws/config). */
      region: string | undefined;
      forcePathStyle: boolean | undefined;
      /** Undefined: the AWS SDK's default credential chain (AWS_* variables, ~/.aws, instance role). */
      credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
    };

export interface ServeConfig {
  host: string;
  /** 0 asks the OS for a free port. */
  port: number;
  /** Absolute; holds `attache.db` (SQLite) and `blobs/` unless PostgreSQL / S3 replace them. */
  dataDir: string;
  metadata: MetadataBackend;
  blobs: BlobBackend;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token: string | undefined;
  /** Largest attachment accepted, in bytes (0 = unlimited); undefined keeps the store's default. */
  maxBytes: number | undefined;
  /** Seconds between background sweeps (the server asks core for the timer; core starts none itself). */
  sweepIntervalSeconds: number;
  /** A blob no row points at is left alone this long before a sweep deletes it; undefined keeps core's default (60 s). */
  orphanGraceSeconds: number | undefined;
  /** Blobs of at most this many bytes live in the metadata database (0: none). */
  inlineBlobMaxBytes: number;
  /** A connection that sends and receives nothing for this long is closed (slow or stalled clients). */
  idleTimeoutSeconds: number;
  /** Uploads streamed at once; more are refused with 503 + Retry-After. */
  maxConcurrentUploads: number;
  /** Browser origins allowed to call the API (ATTACHE_CORS_ORIGINS); undefined: no CORS headers. */
  cors: CorsOptions | undefined;
  /** Largest request line + headers in bytes (query strings included); more gets 431. */
  maxHeaderBytes: number;
  shutdownTimeoutMs: number;
  /** Encryption at rest (ATTACHE_MASTER_KEY): the master key under its id; undefined stores plaintext. */
  encryption: { keys: Record<string, Uint8Array>; activeKeyId: string } | undefined;
  /**
   * Crash-safety tests only (ATTACHE_CRASH_AT): the commit-protocol step at
   * which the server kills itself with SIGKILL (core's `CRASH_POINTS`).
   */
  crashAt?: CrashPoint | undefined;
}

/** `attache keys rotate`: the storage of `attache serve`, opened directly (no HTTP). */
export interface KeysRotateConfig extends Pick<ServeConfig, 'dataDir' | 'metadata' | 'blobs' | 'crashAt' | 'inlineBlobMaxBytes'> {
  /** The active key and the old ones to read; rotation needs encryption configured. */
  encryption: NonNullable<ServeConfig['encryption']>;
  /** Print the report as one JSON object on stdout. */
  json: boolean;
  /** Whether objects stored in plaintext are encrypted too (`--keep-plaintext` turns it off). */
  encryptPlaintext: boolean;
  /** Rows read per page (`--batch-size`); undefined keeps core's default. */
  batchSize: number | undefined;
}

export type CliCommand =
  | { kind: 'serve'; config: ServeConfig }
  | { kind: 'keys-rotate'; config: KeysRotateConfig }
  | { kind: 'help'; text: string }
  | { kind: 'version' };

/** A usage or configuration mistake: the process prints `message` (+ usage) and exits 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  /** Usage text to print after the message, when the mistake is about the command line. */
  readonly usage: string | undefined;

  constructor(message: string, usage?: string) {
    super(message);
    this.name = 'ConfigError';
    this.usage = usage;
  }
}

export const MAIN_USAGE = `Usage: attache <command> [options]

Commands:
  serve          Run the attachment HTTP server (SQLite + local files, or PostgreSQL + S3)
  keys rotate    Re-encrypt stored objects to the active master key ("attache keys rotate --help")
  acquire, keepalive, release, attachments, put, get
                 Client commands against a server ("attache acquire --help")

Options:
  -h, --help     Show this help (or "attache serve --help")
  -v, --version  Print the version
`;

export const SERVE_USAGE = `Usage: attache serve [--port N] [--host H] [--data-dir DIR]

Runs the attache HTTP API at /v1. By default on an embedded store: SQLite
metadata in <data-dir>/attache.db and blobs in <data-dir>/blobs. With
ATTACHE_DATABASE_URL and/or ATTACHE_S3_BUCKET, PostgreSQL and/or S3 replace
them, and any number of instances may share them.

Options (a flag overrides its environment variable):
  --port N          Port to listen on; 0 picks a free one   [env PORT, default ${DEFAULT_PORT}]
  --host H          Interface to bind                        [default ${DEFAULT_HOST}]
  --data-dir DIR    Where metadata and blobs live            [env ATTACHE_DATA_DIR, default ${DEFAULT_DATA_DIR}]
  -h, --help        Show this help

Environment:
  ATTACHE_TOKEN                   Require "Authorization: Bearer <token>" (all but /v1/healthz)
  ATTACHE_MAX_BYTES               Largest attachment in bytes (0 = unlimited; default 1 TiB)
  ATTACHE_SWEEP_INTERVAL_SECONDS  Seconds between sweeps of expired leases and orphans (default 30)
  ATTACHE_ORPHAN_GRACE_SECONDS    Age before a sweep deletes a blob no row points at (default 60; longer than any write)
  ATTACHE_INLINE_MAX_BYTES        Blobs up to this size are kept in the metadata database, not as files
                                  or objects (default ${DEFAULT_INLINE_BLOB_MAX_BYTES}; 0 = none; at most ${MAX_INLINE_BLOB_BYTES})
  ATTACHE_IDLE_TIMEOUT_SECONDS    Close a connection silent this long, e.g. a stalled upload (default ${DEFAULT_IDLE_TIMEOUT_SECONDS})
  ATTACHE_MAX_CONCURRENT_UPLOADS  Uploads at once; more get 503 with Retry-After (default ${DEFAULT_MAX_CONCURRENT_UPLOADS})
  ATTACHE_MAX_HEADER_BYTES        Request line + headers, query included; more get 431 (default ${DEFAULT_MAX_HEADER_BYTES})
  ATTACHE_CORS_ORIGINS            Browser origins allowed to call the API (CORS): https://app.example.com[,...] or *

  ATTACHE_DATABASE_URL            postgres://user:password@host:5432/db: metadata in PostgreSQL
  ATTACHE_DATABASE_POOL_SIZE      Connections per instance (default 10)

  ATTACHE_S3_BUCKET               Blobs in this S3 bucket (it must exist)
  ATTACHE_S3_ENDPOINT             For S3-compatible services (R2, MinIO): https://host[:port]
  ATTACHE_S3_REGION               Default: the AWS SDK's (AWS_REGION); "auto" for R2
  ATTACHE_S3_PREFIX               Key prefix, ending with "/" (e.g. "attache/")
  ATTACHE_S3_FORCE_PATH_STYLE     true or 1 for path-style URLs (MinIO); false or 0 (default)
  ATTACHE_S3_ACCESS_KEY_ID        With ATTACHE_S3_SECRET_ACCESS_KEY; default: the AWS SDK's
  ATTACHE_S3_SECRET_ACCESS_KEY    credential chain (AWS_* variables, ~/.aws, instance role)

  ATTACHE_MASTER_KEY              Encrypt attachments at rest with this key: 32 bytes in base64
                                  ("openssl rand -base64 32"); keep it safe, data is unreadable without it
  ATTACHE_MASTER_KEY_ID           Id stored with each object it encrypts (default ${DEFAULT_MASTER_KEY_ID})
  ATTACHE_OLD_MASTER_KEYS         Earlier keys, still read: id:base64[,id:base64...] (see "attache keys rotate")

Prints "attache listening on <url>" once ready; SIGTERM/SIGINT stop it after
in-flight requests finish.
`;

export type Environment = Readonly<Record<string, string | undefined>>;

export interface ParseContext {
  env: Environment;
  /** Base for a relative data directory (default `process.cwd()`). */
  cwd?: string;
}

/** Parses `argv` (without `node` and the script path) into the command to run. */
export function parseCommandLine(argv: readonly string[], context: ParseContext): CliCommand {
  const [first, ...rest] = argv;
  if (first === undefined) {
    throw new ConfigError('missing command', MAIN_USAGE);
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    return { kind: 'help', text: MAIN_USAGE };
  }
  if (first === '-v' || first === '--version') {
    return { kind: 'version' };
  }
  if (first === 'serve') {
    return parseServe(rest, context);
  }
  if (first === 'keys') {
    return parseKeys(rest, context);
  }
  const what = first.startsWith('-') ? `unknown option ${first}` : `unknown command "${first}"`;
  throw new ConfigError(what, MAIN_USAGE);
}

function parseServe(argv: readonly string[], context: ParseContext): CliCommand {
  let values: { port?: string; host?: string; 'data-dir'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    // parseArgs explains the problem well ("Unknown option '--x'"); keep its words.
    throw new ConfigError(error instanceof Error ? error.message : String(error), SERVE_USAGE);
  }
  if (values.help === true) {
    return { kind: 'help', text: SERVE_USAGE };
  }
  return { kind: 'serve', config: resolveServeConfig(values, context) };
}

export const KEYS_USAGE = `Usage: attache keys rotate [--data-dir DIR] [--json] [--keep-plaintext] [--batch-size N]

Re-encrypts every stored object that is not under the active master key
(ATTACHE_MASTER_KEY, id ATTACHE_MASTER_KEY_ID) to it, reading the old ones
with the keys in ATTACHE_OLD_MASTER_KEYS; objects stored in plaintext before
encryption was enabled are encrypted too (unless --keep-plaintext). It opens
the storage of "attache serve" directly, from the same environment
(ATTACHE_DATA_DIR, ATTACHE_DATABASE_URL, ATTACHE_S3_*, ATTACHE_INLINE_MAX_BYTES, the keys).

  Embedded store (SQLite): stop the server first (the data directory admits
  one process); the replaced blobs are deleted before it exits.
  PostgreSQL: run it beside the servers (give them the same keys first);
  readers and writers go on, and the servers' sweeps delete the replaced blobs.

Safe to interrupt (Ctrl-C) and run again: it resumes with what is left. Once
it reports 0 remaining, the old keys can be removed from the environment.

Options:
  --data-dir DIR     Where metadata and blobs live   [env ATTACHE_DATA_DIR, default ${DEFAULT_DATA_DIR}]
  --json             Print the report as JSON on stdout
  --keep-plaintext   Leave objects stored in plaintext as they are
  --batch-size N     Rows read from the metadata store at a time (default 100)
  -h, --help         Show this help

Progress is drawn on stderr when it is a terminal. Exit codes: 0 everything
is under the active key; 1 some objects failed or remain (listed on stderr),
or the storage could not be opened; 2 usage or configuration error.
`;

function parseKeys(argv: readonly string[], context: ParseContext): CliCommand {
  const [subcommand, ...rest] = argv;
  if (subcommand === undefined || subcommand === '-h' || subcommand === '--help') {
    if (subcommand === undefined) throw new ConfigError('missing subcommand: attache keys rotate', KEYS_USAGE);
    return { kind: 'help', text: KEYS_USAGE };
  }
  if (subcommand !== 'rotate') throw new ConfigError(`unknown subcommand "keys ${subcommand}"`, KEYS_USAGE);
  let values: { 'data-dir'?: string; json?: boolean; 'keep-plaintext'?: boolean; 'batch-size'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...rest],
      strict: true,
      allowPositionals: false,
      options: {
        'data-dir': { type: 'string' },
        json: { type: 'boolean' },
        'keep-plaintext': { type: 'boolean' },
        'batch-size': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error), KEYS_USAGE);
  }
  if (values.help === true) return { kind: 'help', text: KEYS_USAGE };
  const problems: string[] = [];
  const storage = resolveStorage(values, context, problems);
  if (storage.encryption === undefined && problems.length === 0) {
    problems.push('attache keys rotate needs ATTACHE_MASTER_KEY: the key to re-encrypt to (and ATTACHE_OLD_MASTER_KEYS to read the others)');
  }
  const batchText = values['batch-size'];
  const batchSize = batchText === undefined ? undefined : parsePositiveInteger(batchText, '--batch-size', problems);
  if (problems.length > 0 || storage.encryption === undefined) throw new ConfigError(problems.join('\n'));
  return {
    kind: 'keys-rotate',
    config: {
      dataDir: storage.dataDir,
      metadata: storage.metadata,
      blobs: storage.blobs,
      crashAt: storage.crashAt,
      inlineBlobMaxBytes: storage.inlineBlobMaxBytes,
      encryption: storage.encryption,
      json: values.json === true,
      encryptPlaintext: values['keep-plaintext'] !== true,
      batchSize,
    },
  };
}

/** Where the data is and how it is encrypted: what `serve` and `keys rotate` share. Problems are collected, not thrown. */
function resolveStorage(
  flags: { 'data-dir'?: string },
  context: ParseContext,
  problems: string[],
): Pick<ServeConfig, 'dataDir' | 'metadata' | 'blobs' | 'encryption' | 'crashAt' | 'inlineBlobMaxBytes'> {
  const env = context.env;
  const encryption = resolveEncryption(env, problems);
  const inlineText = nonEmpty(env.ATTACHE_INLINE_MAX_BYTES);
  let inlineBlobMaxBytes = DEFAULT_INLINE_BLOB_MAX_BYTES;
  if (inlineText !== undefined) {
    const parsed = parseNonNegativeInteger(inlineText, 'ATTACHE_INLINE_MAX_BYTES', problems);
    if (parsed > MAX_INLINE_BLOB_BYTES) problems.push(`ATTACHE_INLINE_MAX_BYTES must be at most ${MAX_INLINE_BLOB_BYTES}, got ${parsed}`);
    else inlineBlobMaxBytes = parsed;
  }
  const postgres = resolvePostgres(env, problems);
  const s3 = resolveS3(env, problems);
  const dataDirText = flags['data-dir'] ?? nonEmpty(env.ATTACHE_DATA_DIR) ?? DEFAULT_DATA_DIR;
  if (flags['data-dir'] !== undefined && flags['data-dir'].trim() === '') {
    problems.push('--data-dir must not be empty');
  }
  const crashText = nonEmpty(env.ATTACHE_CRASH_AT);
  let crashAt: CrashPoint | undefined;
  if (crashText !== undefined) {
    if (isCrashPoint(crashText)) crashAt = crashText;
    else problems.push(`ATTACHE_CRASH_AT must name a crash point: ${CRASH_POINTS.join(', ')}`);
  }
  const dataDir = resolve(context.cwd ?? process.cwd(), dataDirText);
  return {
    dataDir,
    metadata: postgres ?? { kind: 'sqlite', filename: join(dataDir, 'attache.db') },
    blobs: s3 ?? { kind: 'fs', root: join(dataDir, 'blobs') },
    encryption,
    crashAt,
    inlineBlobMaxBytes,
  };
}

interface ServeFlags {
  port?: string;
  host?: string;
  'data-dir'?: string;
}

/** Environment + flags → config. Reports every problem at once, not just the first. */
export function resolveServeConfig(flags: ServeFlags, context: ParseContext): ServeConfig {
  const env = context.env;
  const problems: string[] = [];

  const storage = resolveStorage(flags, context, problems);

  const portSource = flags.port !== undefined ? '--port' : 'PORT';
  const portText = flags.port ?? nonEmpty(env.PORT);
  const port = portText === undefined ? DEFAULT_PORT : parsePort(portText, portSource, problems);

  const host = flags.host ?? DEFAULT_HOST;
  if (host.trim() === '') {
    problems.push('--host must not be empty');
  }

  // An empty token would let everyone in while looking configured; refuse it.
  const token = env.ATTACHE_TOKEN;
  if (token !== undefined && token.trim() === '') {
    problems.push('ATTACHE_TOKEN is set but empty; unset it to run without authentication');
  }

  const maxBytesText = nonEmpty(env.ATTACHE_MAX_BYTES);
  const maxBytes =
    maxBytesText === undefined ? undefined : parseNonNegativeInteger(maxBytesText, 'ATTACHE_MAX_BYTES', problems);

  const sweepText = nonEmpty(env.ATTACHE_SWEEP_INTERVAL_SECONDS);
  const sweepIntervalSeconds =
    sweepText === undefined
      ? DEFAULT_SWEEP_INTERVAL_SECONDS
      : parsePositiveInteger(sweepText, 'ATTACHE_SWEEP_INTERVAL_SECONDS', problems);

  const graceText = nonEmpty(env.ATTACHE_ORPHAN_GRACE_SECONDS);
  const orphanGraceSeconds =
    graceText === undefined ? undefined : parseNonNegativeInteger(graceText, 'ATTACHE_ORPHAN_GRACE_SECONDS', problems);

  const idleText = nonEmpty(env.ATTACHE_IDLE_TIMEOUT_SECONDS);
  const idleTimeoutSeconds =
    idleText === undefined
      ? DEFAULT_IDLE_TIMEOUT_SECONDS
      : parsePositiveInteger(idleText, 'ATTACHE_IDLE_TIMEOUT_SECONDS', problems);

  const uploadsText = nonEmpty(env.ATTACHE_MAX_CONCURRENT_UPLOADS);
  const maxConcurrentUploads =
    uploadsText === undefined
      ? DEFAULT_MAX_CONCURRENT_UPLOADS
      : parsePositiveInteger(uploadsText, 'ATTACHE_MAX_CONCURRENT_UPLOADS', problems);

  const headerText = nonEmpty(env.ATTACHE_MAX_HEADER_BYTES);
  const maxHeaderBytes =
    headerText === undefined ? DEFAULT_MAX_HEADER_BYTES : parsePositiveInteger(headerText, 'ATTACHE_MAX_HEADER_BYTES', problems);

  const cors = corsFromEnv(nonEmpty(env.ATTACHE_CORS_ORIGINS), problems);

  if (problems.length > 0) {
    throw new ConfigError(problems.join('\n'));
  }
  return {
    host,
    port,
    dataDir: storage.dataDir,
    metadata: storage.metadata,
    blobs: storage.blobs,
    token: token === undefined ? undefined : token,
    maxBytes,
    sweepIntervalSeconds,
    orphanGraceSeconds,
    inlineBlobMaxBytes: storage.inlineBlobMaxBytes,
    idleTimeoutSeconds,
    maxConcurrentUploads,
    maxHeaderBytes,
    cors,
    shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
    encryption: storage.encryption,
    crashAt: storage.crashAt,
  };
}

/** ATTACHE_CORS_ORIGINS: `*`, or origins separated by commas (core parses and checks it). */
function corsFromEnv(text: string | undefined, problems: string[]): CorsOptions | undefined {
  if (text === undefined) return undefined;
  try {
    return parseCorsOrigins(text);
  } catch (error) {
    problems.push(`ATTACHE_CORS_ORIGINS: ${(error as Error).message.replace(/^cors: /, '')}`);
    return undefined;
  }
}

// PostgreSQL and S3 from the environment; undefined where the data-directory
// default applies. Variables that only make sense with another one (a pool
// size without a database, an endpoint without a bucket) are errors rather
// than silently ignored: the operator meant something by them.

function resolvePostgres(env: Environment, problems: string[]): MetadataBackend | undefined {
  const urlText = nonEmpty(env.ATTACHE_DATABASE_URL);
  const poolText = nonEmpty(env.ATTACHE_DATABASE_POOL_SIZE);
  if (urlText === undefined) {
    if (poolText !== undefined) problems.push('ATTACHE_DATABASE_POOL_SIZE is set, but ATTACHE_DATABASE_URL is not');
    return undefined;
  }
  const poolSize = poolText === undefined ? undefined : parsePositiveInteger(poolText, 'ATTACHE_DATABASE_POOL_SIZE', problems);
  // The URL usually holds a password: messages name the scheme, never the URL.
  let url: URL;
  try {
    url = new URL(urlText.trim());
  } catch {
    problems.push('ATTACHE_DATABASE_URL is not a URL; expected postgres://user:password@host:5432/database');
    return undefined;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    problems.push(`ATTACHE_DATABASE_URL must be a postgres:// or postgresql:// URL, got scheme "${url.protocol}"`);
    return undefined;
  }
  // node-postgres would quietly fall back to localhost (or a local socket);
  // an operator who wrote a URL meant a server. A socket stays possible with ?host=.
  if (url.hostname === '' && !url.searchParams.has('host')) {
    problems.push(
      'ATTACHE_DATABASE_URL has no host; expected postgres://user:password@host:5432/database (for a Unix socket: postgres:///database?host=/var/run/postgresql)',
    );
    return undefined;
  }
  return { kind: 'postgres', connectionString: urlText.trim(), poolSize };
}

function resolveS3(env: Environment, problems: string[]): BlobBackend | undefined {
  const known: ReadonlySet<string> = new Set(S3_VARIABLES);
  const setS3Variables = Object.keys(env)
    .filter((name) => name.startsWith('ATTACHE_S3_') && nonEmpty(env[name]) !== undefined)
    .sort();
  const unknown = setS3Variables.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    problems.push(`unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the S3 settings are ${S3_VARIABLES.join(', ')}`);
  }
  const bucket = nonEmpty(env.ATTACHE_S3_BUCKET)?.trim();
  if (bucket === undefined) {
    const orphans = setS3Variables.filter((name) => known.has(name));
    if (orphans.length > 0) {
      problems.push(`${orphans.join(', ')} set, but ATTACHE_S3_BUCKET is not (set it to store blobs in S3, or unset the others)`);
    }
    return undefined;
  }
  if (bucket.includes('/')) {
    problems.push(`ATTACHE_S3_BUCKET must be a bucket name, got "${bucket}" (put a key prefix in ATTACHE_S3_PREFIX)`);
  }

  const endpoint = nonEmpty(env.ATTACHE_S3_ENDPOINT)?.trim();
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+/.test(endpoint)) {
    problems.push(`ATTACHE_S3_ENDPOINT must be an http:// or https:// URL, got "${endpoint}"`);
  }

  const prefix = nonEmpty(env.ATTACHE_S3_PREFIX)?.trim();
  if (prefix !== undefined && (!prefix.endsWith('/') || prefix.startsWith('/'))) {
    // s3Blobs insists on it too; saying so here names the variable to fix.
    problems.push(`ATTACHE_S3_PREFIX must end with "/" and not start with one (e.g. "attache/"), got "${prefix}"`);
  }

  const pathStyleText = nonEmpty(env.ATTACHE_S3_FORCE_PATH_STYLE)?.trim().toLowerCase();
  let forcePathStyle: boolean | undefined;
  if (pathStyleText === 'true' || pathStyleText === '1') forcePathStyle = true;
  else if (pathStyleText === 'false' || pathStyleText === '0') forcePathStyle = false;
  else if (pathStyleText !== undefined) {
    problems.push(`ATTACHE_S3_FORCE_PATH_STYLE must be true, 1, false or 0, got "${env.ATTACHE_S3_FORCE_PATH_STYLE ?? ''}"`);
  }

  const accessKeyId = nonEmpty(env.ATTACHE_S3_ACCESS_KEY_ID)?.trim();
  const secretAccessKey = nonEmpty(env.ATTACHE_S3_SECRET_ACCESS_KEY)?.trim();
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    problems.push('ATTACHE_S3_ACCESS_KEY_ID and ATTACHE_S3_SECRET_ACCESS_KEY go together: set both, or neither to use the AWS SDK\'s credential chain');
  }

  return {
    kind: 's3',
    bucket,
    prefix,
    endpoint,
    region: nonEmpty(env.ATTACHE_S3_REGION)?.trim(),
    forcePathStyle,
    credentials:
      accessKeyId !== undefined && secretAccessKey !== undefined ? { accessKeyId, secretAccessKey } : undefined,
  };
}

/** Where this config keeps its data, for messages: never includes a password. */
export function describeStorage(config: Pick<ServeConfig, 'metadata' | 'blobs'>): string {
  const metadata = config.metadata;
  const blobs = config.blobs;
  let where: string;
  if (metadata.kind === 'sqlite') {
    where = `metadata in ${metadata.filename}`;
  } else {
    const url = new URL(metadata.connectionString);
    where = `metadata in PostgreSQL ${url.host}${url.pathname}`;
  }
  if (blobs.kind === 'fs') {
    where += `, blobs in ${blobs.root}`;
  } else {
    where += `, blobs in s3://${blobs.bucket}/${blobs.prefix ?? ''}${blobs.endpoint === undefined ? '' : ` at ${blobs.endpoint}`}`;
  }
  return where;
}

const MASTER_KEY_BYTES = 32;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * ATTACHE_MASTER_KEY (+ ATTACHE_MASTER_KEY_ID), the key new writes use, and
 * ATTACHE_OLD_MASTER_KEYS, earlier keys kept for reading what they
 * encrypted until `attache keys rotate` has moved it → the store's
 * encryption option. A key that is not exactly 32 bytes of base64 is an
 * error, never "no encryption": the operator asked for it. Messages never
 * echo a key.
 */
function resolveEncryption(env: Environment, problems: string[]): ServeConfig['encryption'] {
  const keyText = nonEmpty(env.ATTACHE_MASTER_KEY)?.trim();
  const idText = nonEmpty(env.ATTACHE_MASTER_KEY_ID)?.trim();
  const oldText = nonEmpty(env.ATTACHE_OLD_MASTER_KEYS)?.trim();
  if (keyText === undefined) {
    if (idText !== undefined) problems.push('ATTACHE_MASTER_KEY_ID is set, but ATTACHE_MASTER_KEY is not');
    if (oldText !== undefined) problems.push('ATTACHE_OLD_MASTER_KEYS is set, but ATTACHE_MASTER_KEY (the key new writes use) is not');
    return undefined;
  }
  const keyId = idText ?? DEFAULT_MASTER_KEY_ID;
  if (!KEY_ID.test(keyId)) {
    problems.push('ATTACHE_MASTER_KEY_ID must be 1 to 64 characters of A-Z a-z 0-9 . _ -');
  }
  const key = decodeMasterKey(keyText);
  if (key === undefined || typeof key === 'string') {
    problems.push(`ATTACHE_MASTER_KEY must be ${MASTER_KEY_BYTES} bytes encoded in base64 (e.g. "openssl rand -base64 32"), got ${key ?? 'nothing'}`);
    return undefined;
  }
  const keys: Record<string, Uint8Array> = { [keyId]: key };
  const oldEntries = oldText === undefined ? [] : oldText.split(',');
  for (const [index, entry] of oldEntries.entries()) {
    const separator = entry.indexOf(':');
    const id = entry.slice(0, Math.max(separator, 0)).trim();
    const which = `ATTACHE_OLD_MASTER_KEYS entry ${index + 1}`;
    if (separator < 0 || !KEY_ID.test(id)) {
      problems.push(`${which} must be id:base64, the id 1 to 64 characters of A-Z a-z 0-9 . _ - (entries separated by ",")`);
      continue;
    }
    if (Object.hasOwn(keys, id)) {
      problems.push(`${which}: key id "${id}" is given twice${id === keyId ? ' (it is ATTACHE_MASTER_KEY_ID)' : ''}`);
      continue;
    }
    const old = decodeMasterKey(entry.slice(separator + 1).trim());
    if (old === undefined || typeof old === 'string') {
      problems.push(`${which} ("${id}") must be ${MASTER_KEY_BYTES} bytes encoded in base64, got ${old ?? 'nothing'}`);
      continue;
    }
    keys[id] = old;
  }
  return { keys, activeKeyId: keyId };
}

/** The key, or what is wrong with it (never the key itself). */
function decodeMasterKey(text: string): Uint8Array | string | undefined {
  if (text === '') return undefined;
  if (!BASE64.test(text)) return 'not valid base64';
  const key = new Uint8Array(Buffer.from(text, 'base64'));
  return key.byteLength === MASTER_KEY_BYTES ? key : `${key.byteLength} bytes`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function parsePort(text: string, source: string, problems: string[]): number {
  const port = parseNonNegativeInteger(text, source, problems);
  if (port > 65_535) {
    problems.push(`${source} must be a port number from 0 to 65535, got "${text}"`);
  }
  return port;
}

function parsePositiveInteger(text: string, source: string, problems: string[]): number {
  const before = problems.length;
  const value = parseNonNegativeInteger(text, source, problems);
  if (problems.length === before && value === 0) {
    problems.push(`${source} must be a positive integer, got "${text}"`);
  }
  return value;
}

function parseNonNegativeInteger(text: string, source: string, problems: string[]): number {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(value)) {
    problems.push(`${source} must be a non-negative integer, got "${text}"`);
    return 0;
  }
  return value;
}
