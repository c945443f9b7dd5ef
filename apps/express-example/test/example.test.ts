// The Express example over real HTTP on 127.0.0.1: the shared example-app
// specification (in-process and the built `dist/main.js`), plus what only
// this app does.
import { fileURLToPath } from 'node:url';
import { describeExampleApp } from '@attache/testing';
import { describe, expect, it } from 'vitest';
import { AVATAR_MAX_BYTES, start } from '../src/app.js';

const { startInProcess } = describeExampleApp({
  name: 'express-example',
  start: (dataDir) => start({ dataDir, port: 0 }),
  mainPath: fileURLToPath(new URL('../dist/main.js', import.meta.url)),
  avatarMaxBytes: AVATAR_MAX_BYTES,
});

describe('express-example behind express.json()', () => {
  it('answers attache JSON, not an HTML page, for malformed lease JSON', async () => {
    const { url } = await startInProcess();
    const response = await fetch(`${url}/v1/acquire`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"key":' });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_body' });
  });
});
