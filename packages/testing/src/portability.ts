// Portability checks for packages that must run on Node, Bun and Workers
// alike (core, hono): their BUILT output may import only what the package
// declares, no Node built-in, and may not touch Node's globals. Scanning dist
// (what users run) rather than the sources catches what the compiler adds,
// and the rules are precise, so a real regression is flagged and nothing else:
//  - module specifiers (static, re-export, side-effect, dynamic import, and
//    `/// <reference types>` in .d.ts) must pass the package's allow list;
//    `node:*` and bare built-in names (`fs`, `crypto`) never do;
//  - code (comments and string contents removed) may not name the globals
//    `process`, `Buffer`, `require`, `__dirname`, `__filename`, `global`,
//    `setImmediate` as bare identifiers; a property of another object
//    (`options.process`) is fine;
//  - `process` reached through `globalThis` is allowed only in the modules
//    named as the package's door to Node built-ins, and only as
//    `globalThis.process?.getBuiltinModule` (see core's node-builtins.ts).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, sep } from 'node:path';

export interface SourceFile {
  /** Path relative to the scanned directory, with `/` separators. */
  path: string;
  text: string;
}

export interface PortabilityRules {
  /** Whether the package may import `specifier` (relative imports are always allowed). */
  allowImport(specifier: string): boolean;
  /** Files (relative paths, e.g. `node-builtins.js`) that may read `globalThis.process?.getBuiltinModule`. */
  builtinModuleDoors?: readonly string[];
}

export interface PortabilityViolation {
  path: string;
  problem: string;
}

const NODE_GLOBALS = ['process', 'Buffer', 'require', '__dirname', '__filename', 'global', 'setImmediate'] as const;
const NODE_BUILTINS = new Set(builtinModules.flatMap((name) => [name, name.split('/')[0]!]));
const DOOR_EXPRESSION = 'globalThis.process?.getBuiltinModule';

/** What a package's portability test reads: its declared dependencies as the import allow list, its `src` and its `dist`. */
export interface PortablePackage {
  /** `dependencies` and `peerDependencies` of its package.json. */
  declared: string[];
  rules: PortabilityRules;
  /** The .ts files under `src`, paths prefixed `src/`. */
  sources(): SourceFile[];
  /** The built .js and .d.ts files under `dist`. */
  built: SourceFile[];
}

/**
 * The package at `packageRoot`, with rules allowing exactly its declared
 * dependencies (and their subpaths) plus `builtinModuleDoors`.
 */
export function portablePackage(packageRoot: string, options: { builtinModuleDoors?: readonly string[] } = {}): PortablePackage {
  const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  const declared = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies });
  const rules: PortabilityRules = {
    allowImport: (specifier) => declared.some((name) => specifier === name || specifier.startsWith(`${name}/`)),
    ...(options.builtinModuleDoors ? { builtinModuleDoors: options.builtinModuleDoors } : {}),
  };
  const sourceRoot = join(packageRoot, 'src');
  const sources = (): SourceFile[] =>
    readdirSync(sourceRoot, { recursive: true, encoding: 'utf8' })
      .filter((path) => path.endsWith('.ts'))
      .map((path) => ({ path: `src/${path.split(sep).join('/')}`, text: readFileSync(join(sourceRoot, path), 'utf8') }));
  return { declared, rules, sources, built: readBuiltFiles(join(packageRoot, 'dist')) };
}

/** The .js and .d.ts files under `directory` (none when it does not exist). */
export function readBuiltFiles(directory: string): SourceFile[] {
  if (!existsSync(directory)) return [];
  return readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.js') || file.endsWith('.d.ts'))
    .map((file) => ({ path: relative(directory, join(directory, file)).split(sep).join('/'), text: readFileSync(join(directory, file), 'utf8') }));
}

/**
 * Code with comments removed and the contents of string, template and
 * regular-expression literals blanked (quotes kept, `${…}` code kept), so
 * prose and data never look like code.
 */
export function codeOnly(source: string): string {
  let out = '';
  let index = 0;
  // Brace depth of each open `${` inside a template, innermost last.
  const templates: number[] = [];
  let braces = 0;
  let lastSignificant = '';
  const regexCanStart = () => lastSignificant === '' || /[(,=:[!&|?{};+\-*%<>~^]$/.test(lastSignificant) || /\b(?:return|typeof|case|do|else|in|of|void|yield|await)$/.test(out.trimEnd());
  const readTemplate = () => {
    // At a template's text (after "`" or "}"): blank it up to "${" or the closing "`".
    while (index < source.length) {
      const char = source[index]!;
      if (char === '\\') {
        index += 2;
        continue;
      }
      if (char === '`') {
        out += '`';
        index += 1;
        lastSignificant = '`';
        return;
      }
      if (char === '$' && source[index + 1] === '{') {
        out += '${';
        index += 2;
        templates.push(braces);
        braces += 1;
        lastSignificant = '{';
        return;
      }
      index += 1;
    }
  };
  while (index < source.length) {
    const char = source[index]!;
    const next = source[index + 1];
    if (char === '/' && next === '/') {
      while (index < source.length && source[index] !== '\n') index += 1;
      continue;
    }
    if (char === '/' && next === '*') {
      const end = source.indexOf('*/', index + 2);
      index = end < 0 ? source.length : end + 2;
      out += ' ';
      continue;
    }
    if (char === '"' || char === "'") {
      let end = index + 1;
      while (end < source.length && source[end] !== char && source[end] !== '\n') end += source[end] === '\\' ? 2 : 1;
      out += char + char;
      index = end + 1;
      lastSignificant = char;
      continue;
    }
    if (char === '`') {
      out += '`';
      index += 1;
      readTemplate();
      continue;
    }
    if (char === '/' && regexCanStart()) {
      let end = index + 1;
      let inClass = false;
      while (end < source.length && source[end] !== '\n') {
        const c = source[end]!;
        if (c === '\\') {
          end += 2;
          continue;
        }
        if (c === '[') inClass = true;
        else if (c === ']') inClass = false;
        else if (c === '/' && !inClass) break;
        end += 1;
      }
      out += '/ /';
      index = end + 1;
      lastSignificant = '/';
      continue;
    }
    if (char === '{') braces += 1;
    if (char === '}') {
      braces -= 1;
      if (templates.length > 0 && templates[templates.length - 1] === braces) {
        templates.pop();
        out += '}';
        index += 1;
        readTemplate();
        continue;
      }
    }
    out += char;
    if (!/\s/.test(char)) lastSignificant = char;
    index += 1;
  }
  return out;
}

/** Every module specifier: static imports, re-exports, side-effect imports, dynamic imports, type references. */
export function moduleSpecifiers(source: string): string[] {
  // Triple-slash type references are comments by syntax, so they are read first.
  const references = [...source.matchAll(/^\s*\/\/\/\s*<reference\s+types\s*=\s*['"]([^'"]+)['"]/gm)].map((match) => match[1]!);
  // Comments go next (a commented-out import is no import); string contents stay, they are the specifiers.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:\\])\/\/.*$/gm, '$1');
  const patterns = [
    /\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  return [...references, ...patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((match) => match[1]!))];
}

function isNodeBuiltin(specifier: string): boolean {
  return specifier.startsWith('node:') || NODE_BUILTINS.has(specifier) || NODE_BUILTINS.has(specifier.split('/')[0]!) || specifier === 'node';
}

export function findPortabilityViolations(files: readonly SourceFile[], rules: PortabilityRules): PortabilityViolation[] {
  const violations: PortabilityViolation[] = [];
  const doors = new Set(rules.builtinModuleDoors ?? []);
  for (const file of files) {
    for (const specifier of moduleSpecifiers(file.text)) {
      if (specifier.startsWith('./') || specifier.startsWith('../')) continue;
      if (isNodeBuiltin(specifier)) violations.push({ path: file.path, problem: `imports the Node built-in ${specifier}` });
      else if (!rules.allowImport(specifier)) violations.push({ path: file.path, problem: `imports ${specifier}, which the package does not declare` });
    }
    if (file.path.endsWith('.d.ts')) continue;
    let code = codeOnly(file.text);
    if (doors.has(file.path)) code = code.split(DOOR_EXPRESSION).join('');
    for (const name of NODE_GLOBALS) {
      // Bare identifier: not a property (`x.process`), not part of a longer name.
      if (new RegExp(`(?<![.\\w$])${name}(?![\\w$])`).test(code)) {
        violations.push({ path: file.path, problem: `uses the Node global ${name}` });
      }
    }
    if (/\b(?:globalThis|self|window)\s*\??\.\s*process\b/.test(code)) {
      violations.push({ path: file.path, problem: `reaches process through globalThis (allowed only as ${DOOR_EXPRESSION} in ${[...doors].join(', ') || 'no module'})` });
    }
  }
  return violations;
}
