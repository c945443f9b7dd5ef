#!/usr/bin/env node
// The `attache` executable: parse, run, and own the process concerns that a
// library must not (stdout/stderr, signals, exit codes).
//   0: success (including a clean shutdown on SIGTERM/SIGINT)
//   1: the server could not start or failed to shut down cleanly
//   2: usage or configuration error
// `keys rotate` exits 1 also when objects failed or remain (keys-command.ts).
// Client commands (client-commands.ts) have their own codes by error class.
// Each command loads only what it runs: a client command does not load the
// server's stack (SQL drivers, the S3 SDK: ~30 MiB of RSS), nor `serve` the client.
import { ConfigError, describeStorage, parseCommandLine } from './config.js';
import type { KeysRotateConfig, ServeConfig } from './config.js';
import type { RunningServer } from './serve.js';
import { cliVersion } from './version.js';

const CLIENT_COMMANDS = ['acquire', 'keepalive', 'release', 'attachments', 'put', 'get'];

async function main(argv: readonly string[]): Promise<number> {
  if (CLIENT_COMMANDS.includes(argv[0] ?? '')) {
    const { runClientCommand } = await import('./client-commands.js');
    return runClientCommand(argv, { env: process.env, stdout: process.stdout, stderr: process.stderr });
  }
  let command;
  try {
    command = parseCommandLine(argv, { env: process.env });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`attache: ${error.message.replaceAll('\n', '\nattache: ')}\n`);
      if (error.usage !== undefined) process.stderr.write(`\n${error.usage}`);
      return error.exitCode;
    }
    throw error;
  }
  switch (command.kind) {
    case 'help':
      process.stdout.write(command.text);
      return 0;
    case 'version':
      process.stdout.write(`${cliVersion()}\n`);
      return 0;
    case 'serve':
      return runServer(command.config);
    case 'keys-rotate':
      return rotateKeys(command.config);
  }
}

async function rotateKeys(config: KeysRotateConfig): Promise<number> {
  // Ctrl-C stops between chunks; what is re-encrypted so far stays so, a rerun resumes.
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write(`\nattache: ${signal} received, stopping the rotation\n`);
    abort.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const { runKeysRotate } = await import('./keys-command.js');
  return runKeysRotate(config, { stdout: process.stdout, stderr: process.stderr, signal: abort.signal });
}

async function runServer(config: ServeConfig): Promise<number> {
  // Signal handlers go in before anything else: a supervisor may signal as
  // soon as it reads the listening line, and Node's default would kill us.
  let stopRequested: ((signal: NodeJS.Signals) => void) | undefined;
  let pendingSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (pendingSignal !== undefined) {
      // A second signal means "now": do not wait for slow clients any longer.
      process.stderr.write(`attache: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    pendingSignal = signal;
    stopRequested?.(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let running: RunningServer;
  try {
    const { serve } = await import('./serve.js');
    running = await serve(config);
  } catch (error) {
    process.stderr.write(`attache: cannot start on ${config.host}:${config.port} (${describeStorage(config)}): ${describe(error)}\n`);
    return 1;
  }

  const stopped = new Promise<NodeJS.Signals>((resolveStop) => {
    if (pendingSignal !== undefined) resolveStop(pendingSignal);
    else stopRequested = resolveStop;
  });
  if (pendingSignal === undefined) {
    // The one line on stdout: scripts and tests wait for it to learn the URL.
    process.stdout.write(`attache listening on ${running.url}\n`);
  }

  const signal = await stopped;
  process.stderr.write(`attache: ${signal} received, finishing in-flight requests\n`);
  try {
    await running.close();
    return 0;
  } catch (error) {
    process.stderr.write(`attache: shutdown failed: ${describe(error)}\n`);
    return 1;
  }
}

/** One line: a multi-line driver message must not break the one-line-per-failure promise. */
function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let pending output flush, but do not let a stray timer or handle in a
    // dependency keep a stopped server's process alive.
    setTimeout(() => process.exit(code), 1_000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`attache: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 1_000).unref();
  },
);
