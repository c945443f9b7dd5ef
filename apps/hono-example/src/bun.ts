// Bun entry: `bun src/bun.ts` serves the same Hono app with Bun's own server,
// which takes the default export `{ port, hostname, fetch }`. Not run in CI:
// attache is tested on Node only so far, and better-sqlite3 (the SQLite
// metadata store) is not verified under Bun yet. Unlike main.ts, this entry
// does not close the store on SIGTERM/SIGINT.
import { DEFAULT_PORT, HOST, createApp, openStore } from './app.js';

const store = await openStore(process.env['ATTACHE_DATA_DIR'] || '.attache-hono');
const app = createApp({ store });

// A default export because Bun's runtime looks for it.
export default { port: Number(process.env['PORT'] || DEFAULT_PORT), hostname: HOST, fetch: app.fetch };
