// Command line + environment → a validated command. Pure (no I/O beyond
// resolving paths against `cwd`) so every rule is unit-testable; bin.ts turns
// a `ConfigError` into its message, the usage text and exit code 2.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

export const DEFAULT_PORT = 3000;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = './.attache';
/** How long SIGTERM waits for in-flight requests before closing their connections. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

export interface ServeConfig {
  host: string;
  /** 0 asks the OS for a free port. */
  port: number;
  /** Absolute; holds `attache.db` (SQLite) and `blobs/`. */
  dataDir: string;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token: string | undefined;
  /** Largest attachment accepted, in bytes (0 = unlimited); undefined keeps the store's default. */
  maxBytes: number | undefined;
  shutdownTimeoutMs: number;
}

export type CliCommand =
  | { kind: 'serve'; config: ServeConfig }
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
  serve          Run the attachment HTTP server (SQLite + local files)

Options:
  -h, --help     Show this help (or "attache serve --help")
  -v, --version  Print the version
`;

export const SERVE_USAGE = `Usage: attache serve [--port N] [--host H] [--data-dir DIR]

Runs the attache HTTP API at /v1 on an embedded store: SQLite metadata in
<data-dir>/attache.db and blobs in <data-dir>/blobs.

Options (a flag overrides its environment variable):
  --port N          Port to listen on; 0 picks a free one   [env PORT, default ${DEFAULT_PORT}]
  --host H          Interface to bind                        [default ${DEFAULT_HOST}]
  --data-dir DIR    Where metadata and blobs live            [env ATTACHE_DATA_DIR, default ${DEFAULT_DATA_DIR}]
  -h, --help        Show this help

Environment:
  ATTACHE_TOKEN       Require "Authorization: Bearer <token>" (all but /v1/healthz)
  ATTACHE_MAX_BYTES   Largest attachment in bytes (0 = unlimited; default 1 TiB)

Not supported by this build yet (setting them is an error):
  ATTACHE_DATABASE_URL, ATTACHE_S3_BUCKET (and ATTACHE_S3_*), ATTACHE_MASTER_KEY

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

interface ServeFlags {
  port?: string;
  host?: string;
  'data-dir'?: string;
}

/** Environment + flags → config. Reports every problem at once, not just the first. */
export function resolveServeConfig(flags: ServeFlags, context: ParseContext): ServeConfig {
  const env = context.env;
  const problems: string[] = [];

  problems.push(...unsupportedSettings(env));

  const portSource = flags.port !== undefined ? '--port' : 'PORT';
  const portText = flags.port ?? nonEmpty(env.PORT);
  const port = portText === undefined ? DEFAULT_PORT : parsePort(portText, portSource, problems);

  const host = flags.host ?? DEFAULT_HOST;
  if (host.trim() === '') {
    problems.push('--host must not be empty');
  }

  const dataDirText = flags['data-dir'] ?? nonEmpty(env.ATTACHE_DATA_DIR) ?? DEFAULT_DATA_DIR;
  if (flags['data-dir'] !== undefined && flags['data-dir'].trim() === '') {
    problems.push('--data-dir must not be empty');
  }

  // An empty token would let everyone in while looking configured; refuse it.
  const token = env.ATTACHE_TOKEN;
  if (token !== undefined && token.trim() === '') {
    problems.push('ATTACHE_TOKEN is set but empty; unset it to run without authentication');
  }

  const maxBytesText = nonEmpty(env.ATTACHE_MAX_BYTES);
  const maxBytes =
    maxBytesText === undefined ? undefined : parseNonNegativeInteger(maxBytesText, 'ATTACHE_MAX_BYTES', problems);

  if (problems.length > 0) {
    throw new ConfigError(problems.join('\n'));
  }
  return {
    host,
    port,
    dataDir: resolve(context.cwd ?? process.cwd(), dataDirText),
    token: token === undefined ? undefined : token,
    maxBytes,
    shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
  };
}

/**
 * Settings documented for the distributed deployment that this build cannot
 * honour yet. Running anyway would store data somewhere the operator did not
 * ask for (or unencrypted), so each one is an error.
 */
function unsupportedSettings(env: Environment): string[] {
  const problems: string[] = [];
  if (nonEmpty(env.ATTACHE_DATABASE_URL) !== undefined) {
    problems.push('ATTACHE_DATABASE_URL is set, but this build does not support PostgreSQL yet (unset it to use SQLite in the data directory)');
  }
  const s3Variables = Object.keys(env)
    .filter((name) => name.startsWith('ATTACHE_S3_') && nonEmpty(env[name]) !== undefined)
    .sort();
  if (s3Variables.length > 0) {
    problems.push(`${s3Variables.join(', ')} set, but this build does not support S3 storage yet (unset to store blobs in the data directory)`);
  }
  if (nonEmpty(env.ATTACHE_MASTER_KEY) !== undefined) {
    problems.push('ATTACHE_MASTER_KEY is set, but this build does not support encryption at rest yet (refusing to store data unencrypted)');
  }
  return problems;
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

function parseNonNegativeInteger(text: string, source: string, problems: string[]): number {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(value)) {
    problems.push(`${source} must be a non-negative integer, got "${text}"`);
    return 0;
  }
  return value;
}
