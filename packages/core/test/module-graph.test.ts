// The shape of core's modules: no import cycles, and subpath entries that
// load only what they name (`@attache/core/memory` no HTTP code,
// `@attache/core/http` no in-memory store).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findImportCycles, importClosure, readModuleGraph } from '../../testing/src/module-graph.js';
import * as root from '../src/index.js';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const sources = readModuleGraph(join(packageRoot, 'src'), '.ts');
type Target = { source: string; types: string; default: string };
const exportsMap = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { exports: Record<string, Target> }).exports;

describe('core modules', () => {
  it('import each other without cycles', () => {
    expect(sources.size).toBeGreaterThan(20);
    expect(findImportCycles(sources)).toEqual([]);
  });

  it('finds a cycle when there is one (the check itself works)', () => {
    const graph = new Map([
      ['http/handler.ts', ['http/routes.ts']],
      ['http/routes.ts', ['http/handler.ts', 'errors.ts']],
      ['errors.ts', []],
    ]);
    expect(findImportCycles(graph)).toEqual([['http/handler.ts', 'http/routes.ts']]);
  });
});

describe('entry points', () => {
  it('are ".", "./http" and "./memory", each with source, types and default in the same place', () => {
    expect(Object.keys(exportsMap)).toEqual(['.', './http', './memory']);
    for (const [entry, target] of Object.entries(exportsMap)) {
      const module = target.source.replace(/^\.\/src\//, '').replace(/\.ts$/, '');
      expect(target, entry).toEqual({ source: `./src/${module}.ts`, types: `./dist/${module}.d.ts`, default: `./dist/${module}.js` });
      expect(sources.has(`${module}.ts`), target.source).toBe(true);
    }
  });

  it('@attache/core/memory loads no HTTP module, and @attache/core/http no in-memory store', () => {
    const memory = [...importClosure(sources, 'memory/index.ts')];
    const http = [...importClosure(sources, 'http/index.ts')];
    expect(memory.filter((path) => path.startsWith('http/'))).toEqual([]);
    expect(http.filter((path) => path.startsWith('memory/'))).toEqual([]);
    // The root entry still loads both, for convenience (API.md §0).
    const everything = importClosure(sources, 'index.ts');
    expect(everything.has('http/handler.ts') && everything.has('memory/metadata.ts')).toBe(true);
  });

  it('the built subpath entries export what the root does under the same names', async () => {
    const dist = join(packageRoot, 'dist');
    const http = (await import(pathToFileURL(join(dist, 'http/index.js')).href)) as Record<string, unknown>;
    const memory = (await import(pathToFileURL(join(dist, 'memory/index.js')).href)) as Record<string, unknown>;
    expect(Object.keys(memory).sort()).toEqual(['memoryBlobs', 'memoryMetadata']);
    expect(Object.keys(http)).toEqual(expect.arrayContaining(['createHandler', 'parseMultipartUploads', 'errorBody', 'attachmentToJson']));
    for (const name of [...Object.keys(http), ...Object.keys(memory)]) expect(Object.keys(root), name).toContain(name);
  });
});
