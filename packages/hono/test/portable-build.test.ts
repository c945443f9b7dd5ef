// The route code must run unchanged on Node, Bun and Cloudflare Workers: its
// sources and its built output (dist, what users load) import only Hono,
// @attache/core and its own modules, and never touch Node globals. The
// package compiles without Node's types (tsconfig.json `types: []`).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findPortabilityViolations, portablePackage, type SourceFile } from '@attache/testing';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const { declared, rules, sources: sourceFiles, built } = portablePackage(packageRoot);

describe('portable route code', () => {
  it('is built (run `pnpm build` first)', () => {
    expect(built.map((file) => file.path), 'dist/ is missing: run pnpm build').toEqual(expect.arrayContaining(['index.js', 'routes.js', 'index.d.ts']));
  });

  it('imports only hono, @attache/core and its own modules, and uses no Node global — in src and dist', () => {
    expect(declared.sort()).toEqual(['@attache/core', 'hono']);
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
