import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  MAIN_USAGE,
  SERVE_USAGE,
  parseCommandLine,
} from '../src/config.js';
import type { Environment, ServeConfig } from '../src/config.js';

const cwd = '/srv/app';

function serveConfig(argv: string[], env: Environment = {}): ServeConfig {
  const command = parseCommandLine(['serve', ...argv], { env, cwd });
  if (command.kind !== 'serve') throw new Error(`expected serve, got ${command.kind}`);
  return command.config;
}

function configError(argv: string[], env: Environment = {}): ConfigError {
  try {
    parseCommandLine(argv, { env, cwd });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(argv)}`);
}

describe('attache serve configuration', () => {
  it('defaults to 127.0.0.1:3000 with data in ./.attache, no token and the store default size limit', () => {
    expect(serveConfig([])).toEqual({
      host: '127.0.0.1',
      port: 3000,
      dataDir: '/srv/app/.attache',
      token: undefined,
      maxBytes: undefined,
      shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
    });
  });

  it('reads PORT, ATTACHE_DATA_DIR, ATTACHE_TOKEN and ATTACHE_MAX_BYTES', () => {
    const config = serveConfig([], {
      PORT: '8080',
      ATTACHE_DATA_DIR: 'var/data',
      ATTACHE_TOKEN: 's3cret',
      ATTACHE_MAX_BYTES: '1048576',
    });
    expect(config).toMatchObject({ port: 8080, dataDir: '/srv/app/var/data', token: 's3cret', maxBytes: 1_048_576 });
  });

  it('lets flags override the environment, in both --flag value and --flag=value forms', () => {
    const config = serveConfig(['--port', '4000', '--host=0.0.0.0', '--data-dir', '/tmp/x'], {
      PORT: '8080',
      ATTACHE_DATA_DIR: 'ignored',
    });
    expect(config).toMatchObject({ port: 4000, host: '0.0.0.0', dataDir: '/tmp/x' });
  });

  it('accepts port 0 (ephemeral) and ATTACHE_MAX_BYTES=0 (unlimited)', () => {
    expect(serveConfig(['--port', '0'], { ATTACHE_MAX_BYTES: '0' })).toMatchObject({ port: 0, maxBytes: 0 });
  });

  it('treats empty environment variables as unset', () => {
    expect(serveConfig([], { PORT: '', ATTACHE_DATA_DIR: '', ATTACHE_MAX_BYTES: ' ', ATTACHE_DATABASE_URL: '' })).toMatchObject({
      port: 3000,
      dataDir: '/srv/app/.attache',
      maxBytes: undefined,
    });
  });

  it.each([
    [['--port', 'abc'], {}, '--port must be a non-negative integer, got "abc"'],
    [['--port', '70000'], {}, '--port must be a port number from 0 to 65535, got "70000"'],
    [['--port=-1'], {}, '--port must be a non-negative integer, got "-1"'],
    [[], { PORT: '3000.5' }, 'PORT must be a non-negative integer, got "3000.5"'],
    [[], { ATTACHE_MAX_BYTES: '10MB' }, 'ATTACHE_MAX_BYTES must be a non-negative integer, got "10MB"'],
    [[], { ATTACHE_MAX_BYTES: '99999999999999999999' }, 'ATTACHE_MAX_BYTES must be a non-negative integer'],
    [[], { ATTACHE_TOKEN: '' }, 'ATTACHE_TOKEN is set but empty'],
    [['--host', ''], {}, '--host must not be empty'],
    [['--data-dir', ''], {}, '--data-dir must not be empty'],
  ] as const)('rejects %j with %j: %s', (argv, env, message) => {
    const error = configError(['serve', ...argv], env);
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(message);
  });

  it.each([
    ['ATTACHE_DATABASE_URL', 'postgres://db/attache', 'does not support PostgreSQL yet'],
    ['ATTACHE_S3_BUCKET', 'my-bucket', 'does not support S3 storage yet'],
    ['ATTACHE_S3_ENDPOINT', 'http://minio:9000', 'does not support S3 storage yet'],
    ['ATTACHE_MASTER_KEY', 'a'.repeat(64), 'does not support encryption at rest yet'],
  ])('refuses to start when %s is set instead of silently ignoring it', (name, value, message) => {
    const error = configError(['serve'], { [name]: value });
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(name);
    expect(error.message).toContain(message);
  });

  it('reports every problem at once', () => {
    const error = configError(['serve', '--port', 'x'], { ATTACHE_MASTER_KEY: 'k', ATTACHE_MAX_BYTES: 'y' });
    expect(error.message.split('\n')).toHaveLength(3);
  });
});

describe('attache command line', () => {
  it('prints the main usage for --help, -h and help', () => {
    for (const argv of [['--help'], ['-h'], ['help']]) {
      expect(parseCommandLine(argv, { env: {} })).toEqual({ kind: 'help', text: MAIN_USAGE });
    }
  });

  it('prints the serve usage for serve --help, even with other flags', () => {
    expect(parseCommandLine(['serve', '--port', '1', '--help'], { env: {} })).toEqual({ kind: 'help', text: SERVE_USAGE });
  });

  it('serve --help does not validate the environment', () => {
    expect(parseCommandLine(['serve', '-h'], { env: { ATTACHE_DATABASE_URL: 'postgres://x' } }).kind).toBe('help');
  });

  it('recognises --version and -v', () => {
    expect(parseCommandLine(['--version'], { env: {} })).toEqual({ kind: 'version' });
    expect(parseCommandLine(['-v'], { env: {} })).toEqual({ kind: 'version' });
  });

  it.each([
    [[], 'missing command', MAIN_USAGE],
    [['start'], 'unknown command "start"', MAIN_USAGE],
    [['--frobnicate'], 'unknown option --frobnicate', MAIN_USAGE],
    [['serve', '--frobnicate'], "Unknown option '--frobnicate'", SERVE_USAGE],
    [['serve', 'extra'], 'extra', SERVE_USAGE],
    [['serve', '--port'], '--port', SERVE_USAGE],
  ])('rejects %j with usage and exit code 2', (argv, message, usage) => {
    const error = configError(argv);
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(message);
    expect(error.usage).toBe(usage);
  });

  it('documents every flag and environment variable in the serve usage', () => {
    for (const word of ['--port', '--host', '--data-dir', 'PORT', 'ATTACHE_DATA_DIR', 'ATTACHE_TOKEN', 'ATTACHE_MAX_BYTES', 'ATTACHE_DATABASE_URL', 'ATTACHE_S3_BUCKET', 'ATTACHE_MASTER_KEY']) {
      expect(SERVE_USAGE).toContain(word);
    }
  });
});
