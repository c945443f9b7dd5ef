// The NestJS example over real HTTP on 127.0.0.1: the shared example-app
// specification (in-process and the built `dist/main.js`), plus what only
// this app does.
import { fileURLToPath } from 'node:url';
import { acquire, describeExampleApp, downloadPublic, expectBodyBytes, leaseHeaders, release } from '@attache/testing';
import { describe, expect, it } from 'vitest';
import { AVATAR_MAX_BYTES, start } from '../src/app.js';

const { startInProcess } = describeExampleApp({
  name: 'nestjs-example',
  start: (dataDir) => start({ dataDir, port: 0, logLevels: ['error', 'warn'] }),
  mainPath: fileURLToPath(new URL('../dist/main.js', import.meta.url)),
  avatarMaxBytes: AVATAR_MAX_BYTES,
});

describe('nestjs-example body parsing', () => {
  it("keeps Nest's body parsing off attache's routes (bodyParser: false): a JSON-typed upload is stored byte for byte", async () => {
    const { url } = await startInProcess();
    const api = `${url}/v1`;
    const json = new TextEncoder().encode('{ "exact": "bytes",  "spacing": true }\n');
    const lease = await acquire(api, 'settings/1');
    const uploaded = await fetch(`${api}/attachments?key=settings%2F1&name=config.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...leaseHeaders(lease) },
      body: json,
    });
    expect(uploaded.status).toBe(200);
    expect((await release(api, lease)).status).toBe(200);
    await expectBodyBytes(await downloadPublic(api, 'settings/1', 'config.json'), json);
  });
});
