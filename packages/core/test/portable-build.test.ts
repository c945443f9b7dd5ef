// Core runs on Node, Bun and Cloudflare Workers: its built output (what users
// load) imports only its declared dependencies, no Node built-in, and uses no
// Node global; Node's fast hashing is reached only through node-builtins.ts.
// The build compiles without Node's types (tsconfig.build.json `types: []`).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findPortabilityViolations, portablePackage } from '../../testing/src/portability.js';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const { rules, built } = portablePackage(packageRoot, { builtinModuleDoors: ['node-builtins.js'] });

describe('portable build of @attache/core (dist)', () => {
  it('exists (run `pnpm build` first) and holds every entry point', () => {
    const paths = built.map((file) => file.path);
    expect(paths, 'dist/ is missing or incomplete: run pnpm build').toEqual(
      expect.arrayContaining(['index.js', 'http/index.js', 'memory/index.js', 'node-builtins.js', 'index.d.ts']),
    );
  });

  it('imports only its declared dependencies, uses no Node global, and reaches process only through node-builtins.js', () => {
    expect(findPortabilityViolations(built, rules)).toEqual([]);
  });

  it('flags a violation planted in a copy of the build, and nothing in the real files', () => {
    const planted = [
      { path: 'planted/env.js', text: 'export const home = process.env.HOME;\n' },
      { path: 'planted/kill.js', text: 'export function die() { process.kill(process.pid, "SIGKILL"); }\n' },
      { path: 'planted/buffer.js', text: 'export const b = (text) => Buffer.from(text);\n' },
      { path: 'planted/require.js', text: 'const fs = require("fs");\nexport { fs };\n' },
      { path: 'planted/node-import.js', text: "import { createHash } from 'node:crypto';\nexport { createHash };\n" },
      { path: 'planted/bare-builtin.js', text: "export { createHash } from 'crypto';\n" },
      { path: 'planted/dynamic.js', text: "export const load = () => import('node:zlib');\n" },
      { path: 'planted/undeclared.js', text: "import pg from 'pg';\nexport { pg };\n" },
      { path: 'planted/through-global.js', text: 'export const env = globalThis.process?.env;\n' },
      { path: 'planted/template.js', text: 'export const where = `${process.cwd()}/x`;\n' },
      { path: 'planted/types.d.ts', text: '/// <reference types="node" />\nexport declare const x: number;\n' },
    ];
    const violations = findPortabilityViolations([...built, ...planted], rules);
    expect(new Set(violations.map((violation) => violation.path))).toEqual(new Set(planted.map((file) => file.path)));
  });

  it('does not flag what is no use of a Node global: prose, strings, regexes, other objects\' properties', () => {
    const harmless = [
      {
        path: 'harmless.js',
        text: [
          '// process.env is never read here; Buffer neither',
          '/* require("fs") */',
          "export const text = 'process.exit() and Buffer.from()';",
          'export const pattern = /process|Buffer/;',
          'export const job = (options) => options.process + options.require;',
          'export const where = `no ${"process"} here`;',
        ].join('\n'),
      },
      // The door's own expression is fine in the door, and only there.
      { path: 'node-builtins.js', text: 'const load = globalThis.process?.getBuiltinModule;\nexport { load };\n' },
    ];
    expect(findPortabilityViolations(harmless, rules)).toEqual([]);
    expect(findPortabilityViolations([{ ...harmless[1]!, path: 'hash.js' }], rules)).toHaveLength(1);
  });
});
