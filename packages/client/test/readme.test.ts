// The README's example is the package's front door: it runs, as written,
// against a real server (only the port is changed).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './server.js';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));

describe('README', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('runs its example against a server (run `pnpm build` first)', async () => {
    const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
    const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toContain("from '@attache/client'");
    // Inside the package directory, so that `@attache/client` resolves to this package's dist.
    const directory = mkdtempSync(join(packageRoot, 'test', '.readme-'));
    try {
      const file = join(directory, 'example.mjs');
      writeFileSync(file, example!.replace('http://127.0.0.1:3000/v1', server.baseUrl));
      const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: packageRoot });
      expect(stdout).toContain("[ 'invoice.txt' ]");
      expect(stdout).toContain('9 total: 42');
      expect(stdout).toMatch(/attachment:\/\/[0-9a-f-]{36} 3610a686 text\/plain/);
      expect(stdout).toContain('held; retry in');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
