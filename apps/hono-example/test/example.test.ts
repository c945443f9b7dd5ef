// The Hono example over real HTTP on 127.0.0.1: the shared example-app
// specification (in-process and the built `dist/main.js`), plus what only
// this app does.
import { fileURLToPath } from 'node:url';
import { describeExampleApp } from '@attache/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { AVATAR_MAX_BYTES } from '../src/app.js';
import { start } from '../src/node.js';

/** What hono's logger() printed in the current test. */
let logLines: string[] = [];
beforeEach(() => {
  logLines = [];
});

const { startInProcess } = describeExampleApp({
  name: 'hono-example',
  start: (dataDir) => start({ dataDir, port: 0, log: (line) => logLines.push(line) }),
  mainPath: fileURLToPath(new URL('../dist/main.js', import.meta.url)),
  avatarMaxBytes: AVATAR_MAX_BYTES,
});

describe('hono-example middleware', () => {
  it("logs every request through hono's logger()", async () => {
    const { url } = await startInProcess();
    const response = await fetch(`${url}/v1/healthz`);
    expect(response.status).toBe(200);
    expect(logLines).toContain('<-- GET /v1/healthz');
    // The status may be colored (ANSI escapes) when the terminal supports it.
    expect(logLines.some((line) => line.startsWith('--> GET /v1/healthz ') && line.includes('200'))).toBe(true);
  });
});
