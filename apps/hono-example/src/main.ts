// `node dist/main.js`: the example server at 127.0.0.1:$PORT (default 3000),
// data in $ATTACHE_DATA_DIR (default ./.attache-hono). Prints one
// "listening" line when ready; SIGTERM or SIGINT closes the server and the
// store, and the process exits 0.
import { parsePort } from './app.js';
import { start } from './node.js';

// Listening for the signals before anything else: a supervisor may signal as
// soon as it reads the listening line, and Node's default would kill us.
const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
  process.once('SIGTERM', resolve);
  process.once('SIGINT', resolve);
});

const port = parsePort(process.env['PORT']);
const dataDir = process.env['ATTACHE_DATA_DIR'] || '.attache-hono';

const running = await start({ port, dataDir });
process.stdout.write(`hono-example listening on ${running.url}\n`);

const signal = await stopRequested;
process.stderr.write(`hono-example: ${signal} received, shutting down\n`);
await running.close();
