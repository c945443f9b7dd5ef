// `bun dist/bun.js` (or `bun src/bun.ts`): the same Hono app on Bun's own
// server, Bun.serve, with the embedded store on bun:sqlite (better-sqlite3 is
// a Node addon, which Bun does not load) and local files. Like main.ts on
// Node: 127.0.0.1:$PORT (default 3000, 0 for any free port), data in
// $ATTACHE_DATA_DIR (default ./.attache-hono), one "listening" line when
// ready; SIGTERM or SIGINT stops the server, closes the store, and exits 0.
import { bunSqliteMetadata } from '@attache/sql/bun-sqlite';
import { HOST, SHUTDOWN_GRACE_MS, createApp, openStore, parsePort } from './app.js';

// The part of Bun's global this entry uses, typed here so that the example
// typechecks with Node's types alone (Bun's own would clash with them).
interface BunServer {
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void>;
}
declare const Bun: {
  serve(options: {
    hostname: string;
    port: number;
    fetch: (request: Request) => Response | Promise<Response>;
    /** Seconds a connection may stay silent; 0 turns the limit off. */
    idleTimeout: number;
    maxRequestBodySize: number;
  }): BunServer;
};

// Listening for the signals first: a supervisor may signal as soon as it
// reads the listening line.
const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
  process.once('SIGTERM', resolve);
  process.once('SIGINT', resolve);
});

const store = await openStore(process.env['ATTACHE_DATA_DIR'] || '.attache-hono', (filename) => bunSqliteMetadata({ filename }));
const app = createApp({ store });
const server = Bun.serve({
  hostname: HOST,
  port: parsePort(process.env['PORT']),
  fetch: app.fetch,
  // Bun's defaults (10 s of silence, 128 MiB of body) would cut off slow and
  // large uploads; the store enforces its own size limit on the stream.
  idleTimeout: 0,
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
});
process.stdout.write(`hono-example listening on http://${HOST}:${server.port}\n`);

const signal = await stopRequested;
process.stderr.write(`hono-example: ${signal} received, shutting down\n`);
// In-flight requests get a grace period, then their connections are dropped.
const dropStragglers = setTimeout(() => void server.stop(true), SHUTDOWN_GRACE_MS);
await server.stop();
clearTimeout(dropStragglers);
await store.close();
process.exit(0);
