// The example on Node: `start` opens the embedded store with better-sqlite3
// and serves `createApp` with @hono/node-server. `main.ts` is its command.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { DEFAULT_PORT, HOST, SHUTDOWN_GRACE_MS, createApp, openStore } from './app.js';

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
  const store = await openStore(options.dataDir, (filename) => sqliteMetadata({ filename }));
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
