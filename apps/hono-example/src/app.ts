// The Hono example: attache's whole HTTP API under /v1 (with hono's request
// logger in front), and one route of the app's own, POST /avatar, that stores
// a form's file as a committed document. `createApp` is a plain Hono app, so
// Bun can serve it too (`bun.ts`); `start` serves it on Node with
// @hono/node-server.
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAttachmentStore, errorResponse, storeFormUpload, type AttachmentStore } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { attacheRoutes } from '@attache/hono';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { logger } from 'hono/logger';

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
  return createAttachmentStore({ metadata, blobs: fsBlobs({ root: blobsRoot }), sweepIntervalSeconds: 30 });
}

export interface AppOptions {
  store: AttachmentStore;
  /** Where `logger()` writes its lines (default `console.log`). */
  log?: (line: string) => void;
}

export function createApp({ store, log }: AppOptions): Hono {
  const app = new Hono();
  app.use(log === undefined ? logger() : logger(log));
  app.route('/v1', attacheRoutes({ store }));

  // Core's in-app upload entry streams the form's file into the store (nothing
  // is held in memory); core's error mapper answers its mistakes.
  app.post('/avatar', async (c) => {
    try {
      const { attachments } = await storeFormUpload(c.req.raw, store, { field: 'file', maxFiles: 1, maxBytes: AVATAR_MAX_BYTES });
      const attachment = attachments[0]!;
      const answer: AvatarJson = { id: attachment.id, ref: `attachment://${attachment.id}`, size: attachment.size, sha256: attachment.sha256 };
      return c.json(answer, 201);
    } catch (error) {
      return errorResponse(error, { quiet: c.req.raw.signal.aborted });
    }
  });
  return app;
}

export interface StartOptions {
  /** Holds `attache.db` and `blobs/`; created when missing. */
  dataDir: string;
  /** Default 3000; 0 lets the OS pick a free port. */
  port?: number;
  /** Where `logger()` writes its lines (default `console.log`). */
  log?: (line: string) => void;
}

export interface RunningExample {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  /** The port actually bound. */
  port: number;
  /** Stops the server (in-flight requests get a grace period), then closes the store. Idempotent. */
  close(): Promise<void>;
}

/** Opens the store in `dataDir` and serves `createApp` on Node at 127.0.0.1. */
export async function start(options: StartOptions): Promise<RunningExample> {
  const store = await openStore(options.dataDir);
  const app = createApp({ store, log: options.log });
  let server: Server;
  try {
    server = await listen(app, options.port ?? DEFAULT_PORT);
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

function listen(app: Hono, port: number): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const started = serve(
      {
        fetch: app.fetch,
        hostname: HOST,
        port,
        // Node's default (300 s per request) would cut off large uploads.
        serverOptions: { requestTimeout: 0 },
      },
      // Without `createServer`/`https`/`http2` options, serve() makes a node:http Server.
      () => resolve(started as Server),
    );
    // EADDRINUSE and the like arrive as an event, not a throw.
    started.once('error', reject);
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
