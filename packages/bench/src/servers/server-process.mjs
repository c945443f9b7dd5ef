// What every peer server process shares: the data directory from the
// environment, listening on 127.0.0.1 at an OS-chosen port, and the one
// "listening on <url>" line the bench waits for (as `attache serve` prints).
import { mkdirSync } from 'node:fs';

export function dataDirFromEnv() {
  const dir = process.env.BENCH_DATA_DIR;
  if (!dir) throw new Error('BENCH_DATA_DIR is not set');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function announce(server, name, { listening = true } = {}) {
  const print = () => process.stdout.write(`${name} listening on http://127.0.0.1:${server.address().port}\n`);
  if (listening) server.listen(0, '127.0.0.1', print);
  else server.once('listening', print);
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}
