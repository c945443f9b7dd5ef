// The version printed by `attache --version` is the package's own, read at
// run time so it cannot drift from package.json. `../package.json` is the same
// relative path from src/ (tests) and dist/ (the published bin).
import { readFileSync } from 'node:fs';

export function cliVersion(): string {
  const manifest: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  if (typeof manifest === 'object' && manifest !== null && 'version' in manifest && typeof manifest.version === 'string') {
    return manifest.version;
  }
  throw new Error('@attache/cli: package.json has no version');
}
