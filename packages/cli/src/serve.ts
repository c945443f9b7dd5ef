// `attache serve` as a library call: builds the store the config names
// (SQLite or PostgreSQL metadata, local or S3 blobs), mounts core's handler
// at /v1 on a Node HTTP server, and returns a handle whose close() drains
// in-flight requests. bin.ts adds only signals and printing, so tests can run
// the same server in-process.
import { randomUUID } from 'node:crypto';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAttachmentStore, createHandler } from '@attache/core';
import type { AttachmentStore, BlobStore, CrashPoint, CrashPointHook, MetadataStore } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { toNodeListener } from '@attache/node';
import { s3Blobs } from '@attache/s3';
import { postgresMetadata } from '@attache/sql/postgres';
import { sqliteMetadata } from '@attache/sql/sqlite';
import type { BlobBackend, MetadataBackend, ServeConfig } from './config.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { explainDirectoryError, explainListenError, explainPostgresError } from './startup-errors.js';

export const BASE_PATH = '/v1';

export interface RunningServer {
  /** Base URL of the server (no trailing slash), e.g. `http://127.0.0.1:3000`. */
  url: string;
  host: string;
  /** The port actually bound (the OS's choice when the config asked for 0). */
  port: number;
  store: AttachmentStore;
  /**
   * Stops accepting connections, waits for in-flight requests (up to
   * `timeoutMs`, default the config's `shutdownTimeoutMs`) and then closes
   * whatever connections remain, and finally closes the store. Idempotent.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

export async function serve(config: ServeConfig): Promise<RunningServer> {
  const startedAt = Date.now();
  // The embedded layout (SQLite in the data directory) allows one process
  // per data directory; PostgreSQL instances are stateless and may be many.
  const lock = config.metadata.kind === 'sqlite' ? await lockEmbeddedDataDir(config.dataDir) : undefined;
  let metadata: MetadataStore;
  let blobs: BlobStore;
  try {
    metadata = await openMetadata(config.metadata);
  } catch (error) {
    lock?.release();
    throw error;
  }
  // Checking both backends now, not on the first request, makes an unusable
  // database or bucket fail the start (exit 1) instead of every request later.
  try {
    await migrateOrExplain(metadata, config.metadata, config.dataDir);
    blobs = await openBlobs(config.blobs);
    // Holding the lock, nobody else writes here: every temp file older than
    // this process is an upload a killed predecessor never finished.
    if (lock !== undefined && config.blobs.kind === 'fs') await blobs.purgeTemporary?.(startedAt);
  } catch (error) {
    await metadata.close().catch(() => undefined);
    lock?.release();
    throw error;
  }
  const store = createAttachmentStore({
    metadata,
    blobs,
    ...(config.maxBytes === undefined ? {} : { maxBytes: config.maxBytes }),
    sweepIntervalSeconds: config.sweepIntervalSeconds,
    ...(config.orphanGraceSeconds === undefined ? {} : { orphanGraceSeconds: config.orphanGraceSeconds }),
    inlineBlobMaxBytes: config.inlineBlobMaxBytes,
    ...(config.encryption === undefined ? {} : { encryption: config.encryption }),
    ...(config.crashAt === undefined ? {} : { onCrashPoint: killSelfAt(config.crashAt) }),
  });
  const handler = createHandler({
    store,
    basePath: BASE_PATH,
    maxConcurrentUploads: config.maxConcurrentUploads,
    ...(config.token === undefined ? {} : { token: config.token }),
    ...(config.cors === undefined ? {} : { cors: config.cors }),
  });

  let server: Server;
  let address: AddressInfo;
  try {
    ({ server, address } = await listen(handler, config));
  } catch (error) {
    await store.close().catch(() => undefined);
    lock?.release();
    throw explainListenError(error, config.host, config.port);
  }

  let closing: Promise<void> | undefined;
  // A keep-alive connection whose request finishes during shutdown would stay
  // open until its idle timeout; drop it as soon as it becomes idle.
  server.on('request', (_request, response) => {
    response.on('finish', () => {
      if (closing !== undefined) setImmediate(() => server.closeIdleConnections());
    });
  });

  return {
    url: `http://${formatHost(address.address)}:${address.port}`,
    host: address.address,
    port: address.port,
    store,
    close(options = {}) {
      closing ??= shutdown(server, store, options.timeoutMs ?? config.shutdownTimeoutMs).finally(() => lock?.release());
      return closing;
    },
  };
}

/**
 * The crash-safety tests' power cut: the process dies on the spot (SIGKILL,
 * no cleanup, nothing flushed) when the engine reaches `crashAt`.
 */
export function killSelfAt(crashAt: CrashPoint): CrashPointHook {
  return (point) => {
    if (point === crashAt) process.kill(process.pid, 'SIGKILL');
  };
}

export async function openMetadata(backend: MetadataBackend): Promise<MetadataStore> {
  if (backend.kind === 'postgres') {
    return postgresMetadata({
      connectionString: backend.connectionString,
      ...(backend.poolSize === undefined ? {} : { max: backend.poolSize }),
    });
  }
  return sqliteMetadata({ filename: backend.filename });
}

/** Brings the schema up to date; a failure becomes one clear line about the database or the data directory. */
export async function migrateOrExplain(metadata: MetadataStore, backend: MetadataBackend, dataDir: string): Promise<void> {
  try {
    await metadata.migrate();
  } catch (error) {
    throw backend.kind === 'postgres' ? explainPostgresError(error, backend.connectionString) : explainDirectoryError(error, 'data directory', dataDir);
  }
}

export async function lockEmbeddedDataDir(dataDir: string): Promise<DataDirLock> {
  try {
    await mkdir(dataDir, { recursive: true });
    return lockDataDir(dataDir);
  } catch (error) {
    throw explainDirectoryError(error, 'data directory', dataDir);
  }
}

/** Creates the blob directory and proves it writable, so a read-only one fails the start, not the first upload. */
async function prepareBlobDirectory(root: string): Promise<void> {
  const probe = join(root, `.write-probe-${randomUUID()}`);
  try {
    await mkdir(root, { recursive: true });
    await writeFile(probe, '', { flag: 'wx' });
    await unlink(probe);
  } catch (error) {
    await unlink(probe).catch(() => undefined);
    throw explainDirectoryError(error, 'blob directory', root);
  }
}

export async function openBlobs(backend: BlobBackend): Promise<BlobStore> {
  if (backend.kind === 'fs') {
    await prepareBlobDirectory(backend.root);
    return fsBlobs({ root: backend.root });
  }
  const blobs = s3Blobs({
    bucket: backend.bucket,
    ...(backend.prefix === undefined ? {} : { prefix: backend.prefix }),
    ...(backend.endpoint === undefined ? {} : { endpoint: backend.endpoint }),
    ...(backend.region === undefined ? {} : { region: backend.region }),
    ...(backend.forcePathStyle === undefined ? {} : { forcePathStyle: backend.forcePathStyle }),
    ...(backend.credentials === undefined ? {} : { credentials: backend.credentials }),
  });
  // One listing request proves the bucket exists and the credentials may read
  // it; without it a typo in the bucket name would only show on the first upload.
  try {
    const listing = blobs.list('state/')[Symbol.asyncIterator]();
    await listing.next();
    await listing.return?.();
  } catch (error) {
    await blobs.close?.().catch(() => undefined);
    throw new Error(`S3 bucket "${backend.bucket}" is not usable: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return blobs;
}

/** Request headers must arrive within this time (slow-loris on headers). */
const HEADERS_TIMEOUT_MS = 30_000;

async function listen(
  handler: (request: Request) => Promise<Response>,
  config: ServeConfig,
): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer(
    {
      // No limit on a whole request: a large upload may take as long as it
      // keeps moving. A stalled one is cut off by the idle timeout below.
      requestTimeout: 0,
      // Node derives this from requestTimeout (0 would disable it): explicit.
      headersTimeout: HEADERS_TIMEOUT_MS,
      // How often Node checks headersTimeout (default 30 s, which would let
      // a stalled header block live up to a minute).
      connectionsCheckingInterval: 5_000,
      // An idle keep-alive connection lives as long as any silent socket
      // (below). Node's 5 s default races clients whose own keep-alive timer
      // is about as long (undici reuses a socket the server is closing and
      // fails with "other side closed"); announced as `Keep-Alive: timeout=`,
      // so clients close first.
      keepAliveTimeout: config.idleTimeoutSeconds * 1000,
      maxHeaderSize: config.maxHeaderBytes,
    },
    toNodeListener(handler),
  );
  // A socket silent for this long is destroyed: its request body errors and
  // the engine keeps nothing of the upload.
  server.setTimeout(config.idleTimeoutSeconds * 1000, (socket) => socket.destroy());
  await new Promise<void>((resolvePromise, reject) => {
    // Listen errors (EADDRINUSE, EACCES) arrive as an event, never as a throw.
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
  return { server, address: server.address() as AddressInfo };
}

async function shutdown(server: Server, store: AttachmentStore, timeoutMs: number): Promise<void> {
  const stopped = new Promise<void>((resolvePromise) => {
    server.close(() => resolvePromise());
  });
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), timeoutMs);
  try {
    await stopped;
  } finally {
    clearTimeout(force);
  }
  await store.close();
}

function formatHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}
