// @attache/sql loads only what the app uses: the root entry is driver-free
// (Node, Bun, Workers), and each driver entry loads its own driver and no
// other, so a PostgreSQL-only app need not install (compile) better-sqlite3.
// Checked on the module graph of the sources and, when built, of dist/. The
// install itself is proven by the release rehearsal (.ci/release-rehearsal.mjs),
// which installs the packed tarballs with pg and without better-sqlite3.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { requireDriver } from '../src/require-driver.js';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
  exports: Record<string, { source: string; default: string }>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};
const NODE_GLOBAL = /\b(?:process|Buffer|__dirname|__filename|require|setImmediate|global)\b/;

/** Source text without comments, so prose about drivers does not count. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

/** What a module loads when it runs: imports, re-exports, dynamic imports, `require`/`requireDriver` calls; not type-only imports. */
function loadedSpecifiers(source: string): string[] {
  const code = withoutComments(source)
    .replace(/\bimport\s+type\s[^;]*?\bfrom\s*['"][^'"]+['"]/g, '')
    .replace(/\bexport\s+type\s[^;]*?\bfrom\s*['"][^'"]+['"]/g, '');
  const patterns = [
    /\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire(?:Driver)?\s*(?:<[^>()]*>)?\(\s*['"]([^'"]+)['"]/g,
  ];
  return patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((match) => match[1]!));
}

interface ModuleGraph {
  files: string[];
  /** Bare and `node:` specifiers loaded anywhere in the graph. */
  external: Set<string>;
}

/** Follows relative imports from `entry` (a .ts file under src/ or a .js file under dist/). */
function moduleGraph(entry: string): ModuleGraph {
  const files: string[] = [];
  const external = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.includes(file)) continue;
    files.push(file);
    for (const specifier of loadedSpecifiers(readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) external.add(specifier);
      else pending.push(resolve(dirname(file), file.endsWith('.ts') ? specifier.replace(/\.js$/, '.ts') : specifier));
    }
  }
  return { files, external };
}

/** The graph of an export (`.`, `./sqlite`, `./postgres`) in src/ and, when built, in dist/. */
function graphsOf(exportName: string): Array<{ label: string } & ModuleGraph> {
  const target = manifest.exports[exportName]!;
  const entries = [{ label: `${exportName} (source)`, file: join(packageRoot, target.source) }];
  const built = join(packageRoot, target.default);
  if (existsSync(built)) entries.push({ label: `${exportName} (dist)`, file: built });
  return entries.map(({ label, file }) => ({ label, ...moduleGraph(file) }));
}

describe('entry points', () => {
  it('finds what a module loads (the scanner itself works)', () => {
    const source = [
      "import type { A } from 'types-only';",
      "import type {\n  B,\n} from 'types-only-too';",
      "export type * from './schema.js';",
      "import { x } from 'node:fs';",
      "export * from './a.js';",
      "import 'side';",
      "const m = await import('dyn');",
      "const d = requireDriver<typeof D>('native', '@attache/sql/x');",
      '// import { y } from "commented";',
    ].join('\n');
    expect(loadedSpecifiers(source).sort()).toEqual(['./a.js', 'dyn', 'native', 'node:fs', 'side']);
  });

  it('exports the root, ./sqlite, ./bun-sqlite, ./postgres and ./durable-object, each built to its own file', () => {
    expect(Object.keys(manifest.exports).sort()).toEqual(['.', './bun-sqlite', './durable-object', './postgres', './sqlite']);
    for (const name of Object.keys(manifest.exports)) expect(graphsOf(name).length).toBeGreaterThan(0);
  });

  it('keeps the root entry free of drivers and Node modules, so it loads on Bun and Workers', () => {
    for (const graph of graphsOf('.')) {
      expect([...graph.external].sort(), graph.label).toEqual(['@attache/core', 'kysely']);
      for (const file of graph.files) {
        const code = withoutComments(readFileSync(file, 'utf8')).replace(/'[^'\n]*'|"[^"\n]*"|`[^`]*`/g, "''");
        expect(code.match(NODE_GLOBAL)?.[0], file).toBeUndefined();
      }
    }
  });

  it('keeps @attache/sql/durable-object free of drivers and Node modules: it runs inside workerd', () => {
    for (const graph of graphsOf('./durable-object')) {
      expect([...graph.external].sort(), graph.label).toEqual(['@attache/core', 'kysely']);
      for (const file of graph.files) {
        const code = withoutComments(readFileSync(file, 'utf8')).replace(/'[^'\n]*'|"[^"\n]*"|`[^`]*`/g, "''");
        expect(code.match(NODE_GLOBAL)?.[0], file).toBeUndefined();
      }
    }
  });

  it('loads better-sqlite3 from @attache/sql/sqlite and nothing of PostgreSQL', () => {
    for (const graph of graphsOf('./sqlite')) {
      expect(graph.external, graph.label).toContain('better-sqlite3');
      expect(graph.external, graph.label).not.toContain('pg');
    }
  });

  it('loads bun:sqlite from @attache/sql/bun-sqlite, and neither better-sqlite3 nor pg', () => {
    for (const graph of graphsOf('./bun-sqlite')) {
      // A computed specifier (the scanner cannot follow it): Node and its bundlers have no bun:sqlite.
      expect(readFileSync(graph.files[0]!, 'utf8'), graph.label).toMatch(/const BUN_SQLITE = 'bun:sqlite';/);
      expect(graph.external, graph.label).not.toContain('better-sqlite3');
      expect(graph.external, graph.label).not.toContain('pg');
    }
  });

  it('loads pg from @attache/sql/postgres and nothing of SQLite', () => {
    for (const graph of graphsOf('./postgres')) {
      expect(graph.external, graph.label).toContain('pg');
      expect(graph.external, graph.label).not.toContain('better-sqlite3');
    }
  });

  it('declares both drivers as optional peer dependencies, not as dependencies', () => {
    for (const driver of ['better-sqlite3', 'pg']) {
      expect(manifest.dependencies?.[driver], driver).toBeUndefined();
      expect(manifest.peerDependencies?.[driver], driver).toBeDefined();
      expect(manifest.peerDependenciesMeta?.[driver]?.optional, driver).toBe(true);
    }
  });
});

describe('@attache/sql/bun-sqlite on Node', () => {
  it('fails to load, naming the entry for Node', async () => {
    await expect(import('../src/bun-sqlite.js')).rejects.toThrow(
      '@attache/sql/bun-sqlite runs on Bun only (it needs bun:sqlite); on Node use @attache/sql/sqlite',
    );
  });
});

describe('requireDriver', () => {
  it('returns the driver when it is installed', () => {
    expect(typeof requireDriver<unknown>('better-sqlite3', '@attache/sql/sqlite')).toBe('function');
  });

  it('names the package to install when the driver is missing', () => {
    expect(() => requireDriver('attache-driver-that-is-not-installed', '@attache/sql/example')).toThrow(
      '@attache/sql/example needs the "attache-driver-that-is-not-installed" package, which is not installed. ' +
        'Install it beside @attache/sql: npm install attache-driver-that-is-not-installed',
    );
  });
});
