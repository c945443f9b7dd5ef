// The relative-import graph of a package's modules, for tests that hold its
// shape: no import cycles, and entry points that load only what they name.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { moduleSpecifiers } from './portability.js';

/** Module path (relative to the root, `/` separators) → the modules it imports. */
export type ModuleGraph = Map<string, string[]>;

/**
 * Reads every `.ts` (not `.d.ts`) or `.js` module under `root`. A relative
 * specifier `./x.js` resolves to `x.ts` when scanning sources.
 */
export function readModuleGraph(root: string, extension: '.ts' | '.js'): ModuleGraph {
  const graph: ModuleGraph = new Map();
  if (!existsSync(root)) return graph;
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter(
    (file) => file.endsWith(extension) && !file.endsWith('.d.ts'),
  );
  for (const file of files) {
    const path = file.split(sep).join('/');
    const imports = moduleSpecifiers(readFileSync(join(root, file), 'utf8'))
      .filter((specifier) => specifier.startsWith('./') || specifier.startsWith('../'))
      .map((specifier) => {
        const target = normalize(join(dirname(file), specifier)).split(sep).join('/');
        return extension === '.ts' ? target.replace(/\.js$/, '.ts') : target;
      });
    graph.set(path, [...new Set(imports)]);
  }
  return graph;
}

/** Every import cycle, each as the list of modules around it (one entry per distinct cycle). */
export function findImportCycles(graph: ModuleGraph): string[][] {
  const cycles = new Map<string, string[]>();
  const visit = (path: string, stack: string[]) => {
    const at = stack.indexOf(path);
    if (at >= 0) {
      const cycle = stack.slice(at);
      const key = [...cycle].sort().join(' ');
      if (!cycles.has(key)) cycles.set(key, cycle);
      return;
    }
    if (done.has(path)) return;
    stack.push(path);
    for (const next of graph.get(path) ?? []) visit(next, stack);
    stack.pop();
    done.add(path);
  };
  const done = new Set<string>();
  for (const path of graph.keys()) visit(path, []);
  return [...cycles.values()];
}

/** Every module `entry` loads, itself included. */
export function importClosure(graph: ModuleGraph, entry: string): Set<string> {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const path = pending.pop()!;
    if (seen.has(path)) continue;
    seen.add(path);
    pending.push(...(graph.get(path) ?? []));
  }
  return seen;
}
