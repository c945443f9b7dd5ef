// `node dist/main.js`: the example server at 127.0.0.1:$PORT (default 3000),
// data in $ATTACHE_DATA_DIR (default ./.attache-nestjs). Prints one
// "listening" line when ready; SIGTERM or SIGINT closes the server and the
// store, and the process exits 0.
import { DEFAULT_PORT, start } from './app.js';

// Listening for the signals before anything else: a supervisor may signal as
// soon as it reads the listening line, and Node's default would kill us.
const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
  process.once('SIGTERM', resolve);
  process.once('SIGINT', resolve);
});

const port = parsePort(process.env['PORT']);
const dataDir = process.env['ATTACHE_DATA_DIR'] || '.attache-nestjs';

const running = await start({ port, dataDir });
process.stdout.write(`nestjs-example listening on ${running.url}\n`);

const signal = await stopRequested;
process.stderr.write(`nestjs-example: ${signal} received, shutting down\n`);
await running.close();

function parsePort(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_PORT;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`PORT must be an integer from 0 to 65535, got "${text}"`);
  return port;
}
