// The client commands (`attache acquire`, `attachments put`, …) driven from
// bash against a real `attache serve`, as users script them.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN_PATH, killLeftovers, runCli, startServer, stopServer, withTempDir, type RunningCli } from './process-helpers.js';

const SCRIPT = fileURLToPath(new URL('./client-lifecycle.sh', import.meta.url));

describe('attache client commands', () => {
  let server: RunningCli;
  let dataDir: { path: string; remove: () => Promise<void> };
  beforeAll(async () => {
    assertBuilt();
    dataDir = await withTempDir();
    server = await startServer(dataDir.path);
  });
  afterAll(async () => {
    await stopServer(server);
    killLeftovers();
    await dataDir.remove();
  });

  it('runs the lease lifecycle from bash: acquire via eval, put, list, release, public list and get, rollback, documents, errors', async () => {
    const { stdout } = await promisify(execFile)('bash', [SCRIPT], {
      env: { PATH: process.env.PATH ?? '', ATTACHE_URL: `${server.url}/v1`, ATTACHE_BIN: BIN_PATH },
    }).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`client-lifecycle.sh failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
    });
    expect(stdout).toContain('lifecycle ok');
    // About 25 short-lived node processes, on a shared CI machine.
  }, 180_000);

  it('prints export lines for eval, shell-quoted', async () => {
    const run = runCli(['acquire', '--key', 'quoted', '--ttl', '5', '--server', `${server.url}/v1`]);
    expect((await run.exited).code).toBe(0);
    expect(run.output.stdout).toMatch(/^export ATTACHE_LEASE_ID='[0-9a-f-]{36}'\nexport ATTACHE_TXN_ID='[0-9a-f-]{36}'\nexport ATTACHE_FENCING_TOKEN='1'\nexport ATTACHE_KEY='quoted'\nexport ATTACHE_NAMESPACE='default'\n$/);
  });

  it('refuses a lease command without a lease, and a command without a server, with exit 2 and one line', async () => {
    const noLease = runCli(['release'], { ATTACHE_URL: `${server.url}/v1` });
    expect((await noLease.exited).code).toBe(2);
    expect(noLease.output.stderr).toMatch(/^attache: ATTACHE_FENCING_TOKEN .* is required\n$/);
    const noServer = runCli(['attachments', 'list', '--public', '--key', 'k']);
    expect((await noServer.exited).code).toBe(2);
    expect(noServer.output.stderr).toMatch(/^attache: no server: pass --server URL or set ATTACHE_URL/);
  });

  it('answers --help on every client command', async () => {
    for (const args of [['acquire', '--help'], ['attachments', 'put', '--help'], ['get', '--help']]) {
      const run = runCli(args);
      expect((await run.exited).code, args.join(' ')).toBe(0);
      expect(run.output.stdout).toContain('eval "$(attache acquire');
    }
  });
});
