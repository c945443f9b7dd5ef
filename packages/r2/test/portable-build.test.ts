// The R2 store runs inside workerd: its sources and its built output (dist,
// what users load) import only @attache/core and its own modules, and never
// touch Node globals. The package compiles without Node's types
// (tsconfig.json `types: []`). Its behaviour is tested in workerd itself, by
// apps/cloudflare-worker's tests in miniflare.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findPortabilityViolations, portablePackage } from '@attache/testing';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const { declared, rules, sources: sourceFiles, built } = portablePackage(packageRoot);

describe('portable R2 store', () => {
  it('is built (run `pnpm build` first)', () => {
    expect(built.map((file) => file.path), 'dist/ is missing: run pnpm build').toEqual(
      expect.arrayContaining(['index.js', 'r2-blobs.js', 'index.d.ts']),
    );
  });

  it('imports only @attache/core and its own modules, and uses no Node global — in src and dist', () => {
    expect(declared.sort()).toEqual(['@attache/core']);
    expect(findPortabilityViolations([...sourceFiles(), ...built], rules)).toEqual([]);
  });
});
