// The three example apps side by side: each one's POST /avatar answers the
// same mistake with the same status, code and message. (Any app could host
// this test; it imports the other two apps by path.)
import { createTempDir, IN_APP_MISTAKES, mistakeAnswerOf, sendInAppMistake, type MistakeAnswer } from '@attache/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AVATAR_MAX_BYTES as EXPRESS_MAX_BYTES, start as startExpress } from '../../express-example/src/app.js';
import { AVATAR_MAX_BYTES as HONO_MAX_BYTES } from '../../hono-example/src/app.js';
import { start as startHono } from '../../hono-example/src/node.js';
import { AVATAR_MAX_BYTES, start as startNest } from '../src/app.js';

interface Running {
  name: string;
  url: string;
  close(): Promise<void>;
}

const apps: Running[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  for (const [name, start] of [
    ['express-example', (dataDir: string) => startExpress({ dataDir, port: 0 })],
    ['hono-example', (dataDir: string) => startHono({ dataDir, port: 0, log: () => undefined })],
    ['nestjs-example', (dataDir: string) => startNest({ dataDir, port: 0, logLevels: ['error'] })],
  ] as const) {
    const dataDir = await createTempDir();
    cleanups.push(dataDir.remove);
    const running = await start(dataDir.path);
    cleanups.push(() => running.close());
    apps.push({ name, url: running.url, close: () => running.close() });
  }
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('the three example apps', () => {
  it('share one avatar limit', () => {
    expect([EXPRESS_MAX_BYTES, HONO_MAX_BYTES]).toEqual([AVATAR_MAX_BYTES, AVATAR_MAX_BYTES]);
  });

  for (const mistake of IN_APP_MISTAKES) {
    it(`answer ${mistake} on POST /avatar identically (status, code, message)`, async () => {
      const answers: Record<string, MistakeAnswer> = {};
      for (const app of apps) answers[app.name] = await mistakeAnswerOf(await sendInAppMistake(`${app.url}/avatar`, mistake, AVATAR_MAX_BYTES));
      const [first, ...rest] = Object.values(answers);
      expect(first!.status).toBeGreaterThanOrEqual(400);
      for (const name of Object.keys(answers)) expect({ name, ...answers[name] }).toEqual({ name, ...first });
      expect(rest).toHaveLength(2);
    });
  }
});
