// Real-browser tests drive Debian's Chromium (apt-get install chromium) with
// playwright-core; never a downloaded browser. Without it a test file's
// browser block is skipped (reported as skipped) — except under CI, where a
// missing browser is a failure, so CI cannot pass without running them.
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a headless Chromium that reaches nothing but loopback. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Options for playwright-core's `chromium.launch`. */
export function chromiumLaunchOptions(): { executablePath: string; args: string[]; headless: true } {
  return { executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS], headless: true };
}

/** `describe` for tests that need Chromium: skipped without it, failed without it under CI. */
export function describeWithChromium(name: string, body: () => void): void {
  const present = existsSync(CHROMIUM_PATH);
  if (!present && process.env.CI) {
    describe(name, () => {
      it('has Chromium (CI must install it: apt-get install chromium)', () => {
        throw new Error(`browser tests cannot run: ${CHROMIUM_PATH} is missing`);
      });
    });
    return;
  }
  describe.skipIf(!present)(name, body);
}
