// The Express example: attache's whole HTTP API under /v1 (behind an
// app-wide `express.json()`), and one route of the app's own, POST /avatar,
// where multer streams a form's file into attache as a committed document.
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAttachmentStore, type AttachmentStore } from '@attache/core';
import { attache, attacheErrorHandler, attacheUpload, type AttacheUploadRequest } from '@attache/express';
import { fsBlobs } from '@attache/fs';
import { sqliteMetadata } from '@attache/sql/sqlite';
import express, { type Express, type RequestHandler } from 'express';
import multer from 'multer';

export const HOST = '127.0.0.1';
export const DEFAULT_PORT = 3000;
export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;
/** How long `close()` waits for in-flight requests before dropping their connections. */
const SHUTDOWN_GRACE_MS = 10_000;

/** What POST /avatar answers. */
export interface AvatarJson {
  id: string;
  ref: string;
  size: number;
  sha256: string;
}

/** The embedded store, as `attache serve` builds it: `<dataDir>/attache.db` (SQLite) and `<dataDir>/blobs/`. */
export async function openStore(dataDir: string): Promise<AttachmentStore> {
  const blobsRoot = join(dataDir, 'blobs');
  await mkdir(blobsRoot, { recursive: true });
  const metadata = sqliteMetadata({ filename: join(dataDir, 'attache.db') });
  try {
    // A broken database stops the start instead of failing the first request.
    await metadata.migrate();
  } catch (error) {
    await metadata.close();
    throw error;
  }
  // A long-running server asks for the sweeper's timer (core starts none by itself).
  // Blobs up to 64 KiB live in the database, as with `attache serve`: a small upload is one write, no file.
  return createAttachmentStore({ metadata, blobs: fsBlobs({ root: blobsRoot }), inlineBlobMaxBytes: 64 * 1024, sweepIntervalSeconds: 30 });
}

export function createApp({ store }: { store: AttachmentStore }): Express {
  const app = express();
  app.use(express.json());

  const files = attache({ store });
  // `files.errors` answers a body parser's rejection under /v1 with attache's JSON.
  app.use('/v1', files, files.errors);

  // multer parses the form; attacheStorage streams the file into attache
  // through core's in-app upload entry; core words and answers every mistake.
  const avatarUpload = attacheUpload(multer, { store, field: 'file', maxFiles: 1, maxBytes: AVATAR_MAX_BYTES });
  app.post('/avatar', avatarUpload, answerAvatar, attacheErrorHandler);
  return app;
}

const answerAvatar: RequestHandler = (req, res) => {
  // attacheUpload sets req.file, with attache's fields on multer's file object.
  const file = (req as unknown as AttacheUploadRequest).file!;
  const answer: AvatarJson = { id: file.id, ref: file.ref, size: file.size, sha256: file.sha256 };
  res.status(201).json(answer);
};

export interface StartOptions {
  /** Holds `attache.db` and `blobs/`; created when missing. */
  dataDir: string;
  /** Default 3000; 0 lets the OS pick a free port. */
  port?: number;
}

export interface RunningExample {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  /** The port actually bound. */
  port: number;
  /** Stops the server (in-flight requests get a grace period), then closes the store. Idempotent. */
  close(): Promise<void>;
}

export async function start(options: StartOptions): Promise<RunningExample> {
  const store = await openStore(options.dataDir);
  // requestTimeout 0: Node's default (300 s per request) would cut off large uploads.
  const server = createServer({ requestTimeout: 0 }, createApp({ store }));
  try {
    await listen(server, options.port ?? DEFAULT_PORT);
  } catch (error) {
    await store.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  // A keep-alive connection whose request finishes during shutdown would
  // otherwise stay open until its idle timeout: drop it once it is idle.
  server.on('request', (_request, response) => {
    response.on('finish', () => {
      if (closing !== undefined) setImmediate(() => server.closeIdleConnections());
    });
  });
  return {
    url: `http://${HOST}:${port}`,
    port,
    close() {
      closing ??= stopServer(server).then(() => store.close());
      return closing;
    },
  };
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // EADDRINUSE and the like arrive as an event, not a throw.
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function stopServer(server: Server): Promise<void> {
  const stopped = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  server.closeIdleConnections();
  const dropStragglers = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  try {
    await stopped;
  } finally {
    clearTimeout(dropStragglers);
  }
}
