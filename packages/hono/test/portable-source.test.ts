// The route code must run unchanged on Node, Bun and Cloudflare Workers, so
// it may import only Hono, core and its own modules, and never touch Node
// globals. Checked on the sources and, when built, on dist/.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const ALLOWED_SPECIFIER = /^(?:\.\.?\/|hono$|hono\/|@attache\/core$)/;
const NODE_GLOBAL = /\b(?:process|Buffer|__dirname|__filename|require|setImmediate|global)\b/;

function codeFiles(directory: string, extension: string): string[] {
  if (!existsSync(directory)) return [];
  return readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith(extension) && !file.endsWith('.d.ts'))
    .map((file) => join(directory, file));
}

/** Source text without comments, so prose about `node:` modules does not count. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

/** Every module specifier of static imports, re-exports, side-effect imports and dynamic imports. */
function moduleSpecifiers(source: string): string[] {
  const code = withoutComments(source);
  const patterns = [/\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  return patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((match) => match[1]!));
}

describe('portable route code', () => {
  const sources = codeFiles(join(packageRoot, 'src'), '.ts');
  const built = codeFiles(join(packageRoot, 'dist'), '.js');

  it('finds the specifiers the check relies on (the scanner itself works)', () => {
    expect(moduleSpecifiers(`import { x } from 'node:fs';\nexport * from "./a.js";\nimport 'side';\nconst m = await import('dyn');`)).toEqual([
      'node:fs',
      './a.js',
      'side',
      'dyn',
    ]);
    expect(moduleSpecifiers(`// import { x } from 'node:fs'\n/* from 'node:os' */`)).toEqual([]);
  });

  it('imports only hono, @attache/core and its own modules (no node: or other built-ins)', () => {
    expect(sources.length).toBeGreaterThan(0);
    for (const file of [...sources, ...built]) {
      const specifiers = moduleSpecifiers(readFileSync(file, 'utf8'));
      expect(specifiers.length, file).toBeGreaterThan(0);
      for (const specifier of specifiers) expect(specifier, `${file} imports ${specifier}`).toMatch(ALLOWED_SPECIFIER);
    }
  });

  it('uses no Node globals (process, Buffer, require, …)', () => {
    for (const file of [...sources, ...built]) {
      const code = withoutComments(readFileSync(file, 'utf8')).replace(/'[^'\n]*'|"[^"\n]*"|`[^`]*`/g, "''");
      expect(code.match(NODE_GLOBAL)?.[0], file).toBeUndefined();
    }
  });
});
