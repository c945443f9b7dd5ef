// The supported Node versions are stated once (README.md, "Supported
// runtimes") and declared once for tools (the root package.json's
// engines.node). These tests keep the workspace true to them: every package
// declares the same range, and nothing the lockfile installs refuses the
// oldest supported Node (pnpm would warn "Unsupported engine" on install).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../..');
const readJson = (path: string) => JSON.parse(readFileSync(join(root, path), 'utf8')) as { name: string; engines?: { node?: string } };

type Version = [number, number, number];

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * Whether `version` satisfies an npm `engines` range: `||` alternatives of
 * space-separated comparators (`>=`, `>`, `<=`, `<`, `=`, `^`, `~`, or a bare
 * version with optional `x` parts). Throws on anything else, so that an
 * unreadable range fails the test instead of passing it.
 */
function satisfies(version: Version, range: string): boolean {
  return range.split('||').some((alternative) => {
    const comparators = alternative.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/);
    return comparators.every((comparator) => {
      const match = /^(>=|<=|>|<|=|\^|~)?v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(comparator);
      if (!match) throw new Error(`cannot read the engines range "${range}"`);
      const [, operator = '', major, minor, patch] = match;
      const parts = [major, minor, patch].map((part) => (part === undefined || part === 'x' || part === '*' ? undefined : Number(part)));
      const low: Version = [parts[0]!, parts[1] ?? 0, parts[2] ?? 0];
      const cmp = compare(version, low);
      switch (operator) {
        case '>=':
          return cmp >= 0;
        case '>':
          return cmp > 0;
        case '<=':
          return cmp <= 0;
        case '<':
          return cmp < 0;
        case '^':
          return cmp >= 0 && (low[0] > 0 ? version[0] === low[0] : version[0] === 0 && version[1] === low[1]);
        case '~':
          return cmp >= 0 && version[0] === low[0] && version[1] === low[1];
        default:
          // A bare version: exact, or any version in the wildcard's span.
          if (parts[1] === undefined) return version[0] === low[0];
          if (parts[2] === undefined) return version[0] === low[0] && version[1] === low[1];
          return cmp === 0;
      }
    });
  });
}

const supported = readJson('package.json').engines?.node ?? '';
const oldest = /^>=\s*(\d+)\.(\d+)(?:\.(\d+))?$/.exec(supported);

describe('supported Node versions', () => {
  it('reads engines ranges as npm does', () => {
    expect(satisfies([20, 19, 0], '>=20.19')).toBe(true);
    expect(satisfies([20, 19, 0], '>=22')).toBe(false);
    expect(satisfies([20, 19, 0], '^20.19.0 || >=22.12.0')).toBe(true);
    expect(satisfies([22, 5, 0], '^20.19.0 || >=22.12.0')).toBe(false);
    expect(satisfies([20, 19, 0], '20.x || 22.x')).toBe(true);
    expect(satisfies([20, 19, 0], '>=6 <7 || >=8')).toBe(true);
    expect(satisfies([20, 19, 0], '>= 0.8')).toBe(true);
    expect(() => satisfies([20, 19, 0], 'latest')).toThrow('cannot read');
  });

  it('declares one minimum, ">=<major>.<minor>", in the root package.json', () => {
    expect(oldest, `root engines.node is "${supported}"`).not.toBeNull();
  });

  it('declares the same engines.node in every workspace package', () => {
    const manifests = ['packages', 'apps'].flatMap((group) =>
      readdirSync(join(root, group)).map((dir) => readJson(`${group}/${dir}/package.json`)),
    );
    expect(manifests.length).toBeGreaterThan(10);
    const differing = manifests.filter((manifest) => manifest.engines?.node !== supported).map((manifest) => manifest.name);
    expect(differing, `engines.node must be "${supported}"`).toEqual([]);
  });

  it('installs nothing that refuses the oldest supported Node', () => {
    const version: Version = [Number(oldest![1]), Number(oldest![2]), Number(oldest![3] ?? 0)];
    const lockfile = readFileSync(join(root, 'pnpm-lock.yaml'), 'utf8');
    const refusing: string[] = [];
    let checked = 0;
    let entry = '';
    for (const line of lockfile.split('\n')) {
      const key = /^ {2}('?)(\S.*?)\1:$/.exec(line);
      if (key) entry = key[2]!;
      const engines = /^ {4}engines: \{node: (?:'([^']*)'|([^,}]*))/.exec(line);
      if (!engines) continue;
      checked += 1;
      const range = engines[1] ?? engines[2]!;
      if (!satisfies(version, range)) refusing.push(`${entry} (node ${range})`);
    }
    expect(checked).toBeGreaterThan(100);
    expect(refusing, `packages that refuse Node ${version.join('.')}`).toEqual([]);
  });
});
