// The client must run unchanged on Node, Bun, Workers and browsers: its
// sources and its built output (dist, what users load) import only
// @attache/core and its own modules, and never touch Node globals. The
// package compiles without Node's types (tsconfig.json `types: []`).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findPortabilityViolations, readBuiltFiles, type PortabilityRules, type SourceFile } from '@attache/testing';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};
const declared = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies });
const rules: PortabilityRules = {
  allowImport: (specifier) => declared.some((name) => specifier === name || specifier.startsWith(`${name}/`)),
};

function sourceFiles(): SourceFile[] {
  const root = join(packageRoot, 'src');
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.ts'))
    .map((path) => ({ path: `src/${path}`, text: readFileSync(join(root, path), 'utf8') }));
}

describe('portable client code', () => {
  const built = readBuiltFiles(join(packageRoot, 'dist'));

  it('is built (run `pnpm build` first)', () => {
    expect(built.map((file) => file.path), 'dist/ is missing: run pnpm build').toEqual(expect.arrayContaining(['index.js', 'client.js', 'transport.js', 'index.d.ts']));
  });

  it('imports only @attache/core and its own modules, and uses no Node global — in src and dist', () => {
    expect(declared.sort()).toEqual(['@attache/core']);
    expect(findPortabilityViolations([...sourceFiles(), ...built], rules)).toEqual([]);
  });

  it('flags a Node import or global planted among its files', () => {
    const planted: SourceFile[] = [
      { path: 'planted-import.js', text: "import { Readable } from 'node:stream';\nexport { Readable };\n" },
      { path: 'planted-global.js', text: 'export const port = Number(process.env.PORT);\n' },
    ];
    expect(findPortabilityViolations([...built, ...planted], rules).map((violation) => violation.path)).toEqual(['planted-import.js', 'planted-global.js']);
  });
});
