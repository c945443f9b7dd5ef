// The example on Node: `start` opens the embedded store with better-sqlite3
// and serves `createApp` with node:http through @attache/node's listener.
// `main.ts` is its command.
//
// Not @hono/node-server (which @attache/hono's own tests serve it with): its
// request body is Node's `Readable.toWeb`, which copies every chunk (Node 20
// and 24) and hands them over one socket read at a time; @attache/node's
// conversion pulls what the socket has buffered, uncopied. 64 MiB uploads:
// 295–304 MiB/s instead of 206–249 on the same host.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeListener } from '@attache/node';
import { sqliteMetadata } from '@attache/sql/sqlite';
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
    // Node's default (300 s per request) would cut off large uploads.
    const server = createServer({ requestTimeout: 0 }, toNodeListener((request) => app.fetch(request)));
    // EADDRINUSE and the like arrive as an event, not a throw.
    server.once('error', reject);
    server.listen(port, HOST, () => resolve(server));
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
