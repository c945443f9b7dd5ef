import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_IDLE_TIMEOUT_SECONDS,
  DEFAULT_MAX_CONCURRENT_UPLOADS,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_SWEEP_INTERVAL_SECONDS,
  MAIN_USAGE,
  S3_VARIABLES,
  SERVE_USAGE,
  describeStorage,
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
  it('defaults to 127.0.0.1:3000 with SQLite and blobs in ./.attache, no token and the store defaults', () => {
    expect(serveConfig([])).toEqual({
      host: '127.0.0.1',
      port: 3000,
      dataDir: '/srv/app/.attache',
      metadata: { kind: 'sqlite', filename: '/srv/app/.attache/attache.db' },
      blobs: { kind: 'fs', root: '/srv/app/.attache/blobs' },
      token: undefined,
      maxBytes: undefined,
      sweepIntervalSeconds: DEFAULT_SWEEP_INTERVAL_SECONDS,
      inlineBlobMaxBytes: 64 * 1024,
      idleTimeoutSeconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
      maxConcurrentUploads: DEFAULT_MAX_CONCURRENT_UPLOADS,
      maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
      cors: undefined,
      shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
      crashAt: undefined,
    });
    // The server asks core for the sweeper's timer; core starts none by itself.
    expect(DEFAULT_SWEEP_INTERVAL_SECONDS).toBe(30);
  });

  it('reads ATTACHE_INLINE_MAX_BYTES (0 allowed, at most 1 MiB) for serve and keys rotate', () => {
    expect(serveConfig([], { ATTACHE_INLINE_MAX_BYTES: '0' }).inlineBlobMaxBytes).toBe(0);
    expect(serveConfig([], { ATTACHE_INLINE_MAX_BYTES: '1048576' }).inlineBlobMaxBytes).toBe(1048576);
    expect(configError(['serve'], { ATTACHE_INLINE_MAX_BYTES: '1048577' }).message).toContain('ATTACHE_INLINE_MAX_BYTES must be at most 1048576');
    expect(configError(['serve'], { ATTACHE_INLINE_MAX_BYTES: '4k' }).message).toContain('ATTACHE_INLINE_MAX_BYTES must be a non-negative integer');
    const keys = parseCommandLine(['keys', 'rotate'], { env: { ATTACHE_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'), ATTACHE_INLINE_MAX_BYTES: '100' }, cwd });
    expect(keys.kind === 'keys-rotate' && keys.config.inlineBlobMaxBytes).toBe(100);
  });

  it('reads ATTACHE_ORPHAN_GRACE_SECONDS (0 allowed), undefined keeping the store default', () => {
    expect(serveConfig([], { ATTACHE_ORPHAN_GRACE_SECONDS: '5' }).orphanGraceSeconds).toBe(5);
    expect(serveConfig([], { ATTACHE_ORPHAN_GRACE_SECONDS: '0' }).orphanGraceSeconds).toBe(0);
    expect(serveConfig([]).orphanGraceSeconds).toBeUndefined();
    expect(configError(['serve'], { ATTACHE_ORPHAN_GRACE_SECONDS: '-1' }).message).toContain('ATTACHE_ORPHAN_GRACE_SECONDS must be a non-negative integer');
  });

  it('reads ATTACHE_MAX_HEADER_BYTES', () => {
    expect(serveConfig([], { ATTACHE_MAX_HEADER_BYTES: '32768' }).maxHeaderBytes).toBe(32768);
  });

  it('reads ATTACHE_MAX_CONCURRENT_UPLOADS', () => {
    expect(serveConfig([], { ATTACHE_MAX_CONCURRENT_UPLOADS: '8' }).maxConcurrentUploads).toBe(8);
  });

  it('reads ATTACHE_CORS_ORIGINS: origins separated by commas, or *', () => {
    expect(serveConfig([], { ATTACHE_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' }).cors).toEqual({
      origins: ['https://app.example.com', 'http://localhost:5173'],
    });
    expect(serveConfig([], { ATTACHE_CORS_ORIGINS: '*' }).cors).toEqual({ origins: '*' });
  });

  it('reads ATTACHE_IDLE_TIMEOUT_SECONDS', () => {
    expect(serveConfig([], { ATTACHE_IDLE_TIMEOUT_SECONDS: '5' }).idleTimeoutSeconds).toBe(5);
  });

  it('reads ATTACHE_SWEEP_INTERVAL_SECONDS', () => {
    expect(serveConfig([], { ATTACHE_SWEEP_INTERVAL_SECONDS: '1' }).sweepIntervalSeconds).toBe(1);
  });

  it('reads ATTACHE_CRASH_AT as one of core\'s crash points, and refuses a name core does not have', () => {
    expect(serveConfig([], { ATTACHE_CRASH_AT: 'commit.after-metadata' }).crashAt).toBe('commit.after-metadata');
    expect(configError(['serve'], { ATTACHE_CRASH_AT: 'commit.after-metdata' }).message).toContain(
      'ATTACHE_CRASH_AT must name a crash point: upload.after-blob,',
    );
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
    [[], { ATTACHE_SWEEP_INTERVAL_SECONDS: '0' }, 'ATTACHE_SWEEP_INTERVAL_SECONDS must be a positive integer, got "0"'],
    [[], { ATTACHE_IDLE_TIMEOUT_SECONDS: '0' }, 'ATTACHE_IDLE_TIMEOUT_SECONDS must be a positive integer, got "0"'],
    [[], { ATTACHE_MAX_CONCURRENT_UPLOADS: '0' }, 'ATTACHE_MAX_CONCURRENT_UPLOADS must be a positive integer, got "0"'],
    [[], { ATTACHE_SWEEP_INTERVAL_SECONDS: '0.5' }, 'ATTACHE_SWEEP_INTERVAL_SECONDS must be a non-negative integer, got "0.5"'],
    [[], { ATTACHE_CORS_ORIGINS: 'https://app.example.com/' }, 'ATTACHE_CORS_ORIGINS: "https://app.example.com/" is not an origin as browsers send it (scheme://host[:port], no path) (did you mean "https://app.example.com"?)'],
  ] as const)('rejects %j with %j: %s', (argv, env, message) => {
    const error = configError(['serve', ...argv], env);
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(message);
  });

  it('turns on encryption at rest with ATTACHE_MASTER_KEY (32 bytes of base64) under key id k1', () => {
    const key = Buffer.alloc(32, 7);
    expect(serveConfig([], {}).encryption).toBeUndefined();
    const config = serveConfig([], { ATTACHE_MASTER_KEY: key.toString('base64') });
    expect(config.encryption).toEqual({ keys: { k1: new Uint8Array(key) }, activeKeyId: 'k1' });
    const unpadded = serveConfig([], { ATTACHE_MASTER_KEY: key.toString('base64').replace(/=+$/, ''), ATTACHE_MASTER_KEY_ID: '2026-12' });
    expect(unpadded.encryption).toEqual({ keys: { '2026-12': new Uint8Array(key) }, activeKeyId: '2026-12' });
  });

  it.each([
    ['a key of the wrong length', { ATTACHE_MASTER_KEY: Buffer.alloc(16, 1).toString('base64') }, 'ATTACHE_MASTER_KEY must be 32 bytes encoded in base64', 'got 16 bytes'],
    ['64 hex digits', { ATTACHE_MASTER_KEY: 'a'.repeat(64) }, 'ATTACHE_MASTER_KEY must be 32 bytes encoded in base64', 'got 48 bytes'],
    ['text that is not base64', { ATTACHE_MASTER_KEY: 'not a key!' }, 'ATTACHE_MASTER_KEY must be 32 bytes', 'not valid base64'],
    ['a bad key id', { ATTACHE_MASTER_KEY: Buffer.alloc(32).toString('base64'), ATTACHE_MASTER_KEY_ID: 'two words' }, 'ATTACHE_MASTER_KEY_ID must be', '1 to 64'],
    ['a key id without a key', { ATTACHE_MASTER_KEY_ID: 'k2' }, 'ATTACHE_MASTER_KEY_ID is set, but ATTACHE_MASTER_KEY is not', ''],
  ] as [string, Environment, string, string][])('refuses %s with exit code 2, never echoing the key', (_what, env, message, detail) => {
    const error = configError(['serve'], env);
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(message);
    expect(error.message).toContain(detail);
    const key = env.ATTACHE_MASTER_KEY;
    if (key !== undefined) expect(error.message).not.toContain(key);
  });

  it('reads earlier keys from ATTACHE_OLD_MASTER_KEYS (id:base64, comma-separated) beside the active one', () => {
    const active = Buffer.alloc(32, 1);
    const older = Buffer.alloc(32, 2);
    const oldest = Buffer.alloc(32, 3);
    const config = serveConfig([], {
      ATTACHE_MASTER_KEY: active.toString('base64'),
      ATTACHE_MASTER_KEY_ID: 'k3',
      ATTACHE_OLD_MASTER_KEYS: ` k2:${older.toString('base64')} , k1:${oldest.toString('base64').replace(/=+$/, '')}`,
    });
    expect(config.encryption).toEqual({
      keys: { k3: new Uint8Array(active), k2: new Uint8Array(older), k1: new Uint8Array(oldest) },
      activeKeyId: 'k3',
    });
  });

  it.each([
    ['an entry without an id', `${Buffer.alloc(32, 2).toString('base64')}`, 'ATTACHE_OLD_MASTER_KEYS entry 1 must be id:base64'],
    ['a short key', `k2:${Buffer.alloc(31, 2).toString('base64')}`, 'ATTACHE_OLD_MASTER_KEYS entry 1 ("k2") must be 32 bytes encoded in base64, got 31 bytes'],
    ['the active key id again', `k1:${Buffer.alloc(32, 2).toString('base64')}`, 'key id "k1" is given twice (it is ATTACHE_MASTER_KEY_ID)'],
    ['an id given twice', `k2:${Buffer.alloc(32, 2).toString('base64')},k2:${Buffer.alloc(32, 3).toString('base64')}`, 'ATTACHE_OLD_MASTER_KEYS entry 2: key id "k2" is given twice'],
  ])('refuses ATTACHE_OLD_MASTER_KEYS with %s, never echoing a key', (_what, old, message) => {
    const error = configError(['serve'], { ATTACHE_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'), ATTACHE_OLD_MASTER_KEYS: old });
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(message);
    for (const part of old.split(/[,:]/)) if (part.length > 8) expect(error.message).not.toContain(part);
  });

  it('refuses ATTACHE_OLD_MASTER_KEYS without ATTACHE_MASTER_KEY', () => {
    const error = configError(['serve'], { ATTACHE_OLD_MASTER_KEYS: `k1:${Buffer.alloc(32, 2).toString('base64')}` });
    expect(error.message).toContain('ATTACHE_OLD_MASTER_KEYS is set, but ATTACHE_MASTER_KEY (the key new writes use) is not');
  });

  it('reports every problem at once', () => {
    const error = configError(['serve', '--port', 'x'], { ATTACHE_MASTER_KEY: 'k', ATTACHE_MAX_BYTES: 'y' });
    expect(error.message.split('\n')).toHaveLength(3);
  });
});

describe('attache serve with PostgreSQL', () => {
  it.each(['postgres://attache:pw@db.internal:5432/attache', 'postgresql://db.internal/attache?sslmode=require'])(
    'uses PostgreSQL for metadata when ATTACHE_DATABASE_URL is %s, blobs staying in the data directory',
    (url) => {
      const config = serveConfig([], { ATTACHE_DATABASE_URL: ` ${url} ` });
      expect(config.metadata).toEqual({ kind: 'postgres', connectionString: url, poolSize: undefined });
      expect(config.blobs).toEqual({ kind: 'fs', root: '/srv/app/.attache/blobs' });
    },
  );

  it('reads the pool size from ATTACHE_DATABASE_POOL_SIZE', () => {
    const config = serveConfig([], { ATTACHE_DATABASE_URL: 'postgres://db/a', ATTACHE_DATABASE_POOL_SIZE: '25' });
    expect(config.metadata).toEqual({ kind: 'postgres', connectionString: 'postgres://db/a', poolSize: 25 });
  });

  it.each([
    [{ ATTACHE_DATABASE_URL: 'mysql://u:secret@db/a' }, 'ATTACHE_DATABASE_URL must be a postgres:// or postgresql:// URL, got scheme "mysql:"'],
    [{ ATTACHE_DATABASE_URL: '/var/run/secret.db' }, 'ATTACHE_DATABASE_URL is not a URL'],
    [{ ATTACHE_DATABASE_URL: 'sqlite:///var/lib/secret.db' }, 'got scheme "sqlite:"'],
    [{ ATTACHE_DATABASE_URL: 'postgres://db/a', ATTACHE_DATABASE_POOL_SIZE: '0' }, 'ATTACHE_DATABASE_POOL_SIZE must be a positive integer'],
    [{ ATTACHE_DATABASE_POOL_SIZE: '5' }, 'ATTACHE_DATABASE_POOL_SIZE is set, but ATTACHE_DATABASE_URL is not'],
  ])('rejects %j: %s', (env, message) => {
    const error = configError(['serve'], env);
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(message);
    // The URL may carry a password: it must never be echoed back.
    expect(error.message).not.toContain('secret');
  });
});

describe('attache serve with S3', () => {
  it('uses S3 for blobs when ATTACHE_S3_BUCKET is set, with the AWS SDK defaults for the rest', () => {
    const config = serveConfig([], { ATTACHE_S3_BUCKET: 'attachments' });
    expect(config.blobs).toEqual({
      kind: 's3',
      bucket: 'attachments',
      prefix: undefined,
      endpoint: undefined,
      region: undefined,
      forcePathStyle: undefined,
      credentials: undefined,
    });
    expect(config.metadata).toEqual({ kind: 'sqlite', filename: '/srv/app/.attache/attache.db' });
  });

  it('reads endpoint, region, prefix, path style and credentials', () => {
    const config = serveConfig([], {
      ATTACHE_S3_BUCKET: 'attachments',
      ATTACHE_S3_ENDPOINT: 'http://127.0.0.1:9000',
      ATTACHE_S3_REGION: 'auto',
      ATTACHE_S3_PREFIX: 'tenant-a/',
      ATTACHE_S3_FORCE_PATH_STYLE: 'true',
      ATTACHE_S3_ACCESS_KEY_ID: 'AKID',
      ATTACHE_S3_SECRET_ACCESS_KEY: 'SECRET',
    });
    expect(config.blobs).toEqual({
      kind: 's3',
      bucket: 'attachments',
      prefix: 'tenant-a/',
      endpoint: 'http://127.0.0.1:9000',
      region: 'auto',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'SECRET' },
    });
  });

  it.each([
    ['1', true],
    ['TRUE', true],
    ['0', false],
    ['false', false],
  ])('reads ATTACHE_S3_FORCE_PATH_STYLE=%s as %s', (text, expected) => {
    const config = serveConfig([], { ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_FORCE_PATH_STYLE: text });
    expect(config.blobs).toMatchObject({ kind: 's3', forcePathStyle: expected });
  });

  it('runs fully distributed (PostgreSQL + S3) and describes where data lives without the password', () => {
    const config = serveConfig([], {
      ATTACHE_DATABASE_URL: 'postgres://attache:hunter2@db.internal:5432/attache',
      ATTACHE_S3_BUCKET: 'attachments',
      ATTACHE_S3_PREFIX: 'prod/',
      ATTACHE_S3_ENDPOINT: 'https://acct.r2.cloudflarestorage.com',
    });
    expect(config.metadata.kind).toBe('postgres');
    expect(config.blobs.kind).toBe('s3');
    const description = describeStorage(config);
    expect(description).toBe(
      'metadata in PostgreSQL db.internal:5432/attache, blobs in s3://attachments/prod/ at https://acct.r2.cloudflarestorage.com',
    );
    expect(description).not.toContain('hunter2');
  });

  it('names an unknown ATTACHE_S3_* variable and lists the valid ones', () => {
    const error = configError(['serve'], { ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_SESSION_TOKEN: 't', ATTACHE_S3_REGON: 'eu' });
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain('unknown settings ATTACHE_S3_REGON, ATTACHE_S3_SESSION_TOKEN');
    for (const name of S3_VARIABLES) expect(error.message).toContain(name);
  });

  it.each([
    [{ ATTACHE_S3_ENDPOINT: 'http://minio:9000' }, 'ATTACHE_S3_ENDPOINT set, but ATTACHE_S3_BUCKET is not'],
    [{ ATTACHE_S3_BUCKET: 'b/attache' }, 'ATTACHE_S3_BUCKET must be a bucket name'],
    [{ ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_ENDPOINT: 'minio:9000' }, 'ATTACHE_S3_ENDPOINT must be an http:// or https:// URL'],
    [{ ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_PREFIX: 'attache' }, 'ATTACHE_S3_PREFIX must end with "/"'],
    [{ ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_PREFIX: '/attache/' }, 'ATTACHE_S3_PREFIX must end with "/" and not start with one'],
    [{ ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_FORCE_PATH_STYLE: 'yes' }, 'ATTACHE_S3_FORCE_PATH_STYLE must be true, 1, false or 0, got "yes"'],
    [{ ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_ACCESS_KEY_ID: 'AKID' }, 'ATTACHE_S3_ACCESS_KEY_ID and ATTACHE_S3_SECRET_ACCESS_KEY go together'],
    [{ ATTACHE_S3_BUCKET: 'b', ATTACHE_S3_SECRET_ACCESS_KEY: 'SECRET' }, 'go together'],
  ])('rejects %j: %s', (env, message) => {
    const error = configError(['serve'], env);
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(message);
  });

  it('treats empty ATTACHE_S3_* variables as unset', () => {
    expect(serveConfig([], { ATTACHE_S3_BUCKET: '', ATTACHE_S3_ENDPOINT: ' ' }).blobs.kind).toBe('fs');
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
    const words = [
      '--port', '--host', '--data-dir', 'PORT', 'ATTACHE_DATA_DIR', 'ATTACHE_TOKEN', 'ATTACHE_MAX_BYTES',
      'ATTACHE_SWEEP_INTERVAL_SECONDS', 'ATTACHE_IDLE_TIMEOUT_SECONDS', 'ATTACHE_MAX_CONCURRENT_UPLOADS', 'ATTACHE_MAX_HEADER_BYTES', 'ATTACHE_DATABASE_URL', 'ATTACHE_DATABASE_POOL_SIZE', 'ATTACHE_MASTER_KEY', 'ATTACHE_MASTER_KEY_ID',
      ...S3_VARIABLES,
    ];
    for (const word of words) {
      expect(SERVE_USAGE).toContain(word);
    }
  });
});

describe('attache keys rotate', () => {
  const keys = { ATTACHE_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'), ATTACHE_MASTER_KEY_ID: 'k2', ATTACHE_OLD_MASTER_KEYS: `k1:${Buffer.alloc(32, 2).toString('base64')}` };

  it('opens the storage serve would, from the same environment, with the keys', () => {
    const command = parseCommandLine(['keys', 'rotate', '--data-dir', 'data'], { env: { ...keys, ATTACHE_DATABASE_URL: 'postgres://db/a' }, cwd });
    expect(command).toEqual({
      kind: 'keys-rotate',
      config: {
        dataDir: '/srv/app/data',
        metadata: { kind: 'postgres', connectionString: 'postgres://db/a', poolSize: undefined },
        blobs: { kind: 'fs', root: '/srv/app/data/blobs' },
        crashAt: undefined,
        encryption: { keys: { k2: new Uint8Array(Buffer.alloc(32, 1)), k1: new Uint8Array(Buffer.alloc(32, 2)) }, activeKeyId: 'k2' },
        inlineBlobMaxBytes: 64 * 1024,
        json: false,
        encryptPlaintext: true,
        batchSize: undefined,
      },
    });
  });

  it('takes --json, --keep-plaintext and --batch-size', () => {
    const command = parseCommandLine(['keys', 'rotate', '--json', '--keep-plaintext', '--batch-size', '7'], { env: keys, cwd });
    expect(command).toMatchObject({ kind: 'keys-rotate', config: { json: true, encryptPlaintext: false, batchSize: 7 } });
  });

  it('shows its help', () => {
    for (const argv of [['keys', '--help'], ['keys', 'rotate', '--help']]) {
      const command = parseCommandLine(argv, { env: {}, cwd });
      expect(command.kind).toBe('help');
      expect(command.kind === 'help' && command.text).toContain('Usage: attache keys rotate');
    }
  });

  it.each([
    [['keys'], {}, 'missing subcommand: attache keys rotate'],
    [['keys', 'spin'], {}, 'unknown subcommand "keys spin"'],
    [['keys', 'rotate', '--force'], {}, "Unknown option '--force'"],
    [['keys', 'rotate'], {}, 'attache keys rotate needs ATTACHE_MASTER_KEY'],
    [['keys', 'rotate', '--batch-size', '0'], keys, '--batch-size must be a positive integer, got "0"'],
  ] as [string[], Environment, string][])('refuses %j with exit code 2: %s', (argv, env, message) => {
    const error = configError(argv, env);
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(message);
  });
});
