// The contract suite's scenario files take their context from context.ts,
// not from suite.ts (which imports them all): no import cycles.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findImportCycles, readModuleGraph } from '../src/module-graph.js';

const sourceRoot = join(dirname(dirname(fileURLToPath(import.meta.url))), 'src');

describe('@attache/testing modules', () => {
  it('import each other without cycles (the contract suite and its scenarios included)', () => {
    const graph = readModuleGraph(sourceRoot, '.ts');
    expect(graph.get('contract/leases.ts')).toContain('contract/context.ts');
    expect(findImportCycles(graph)).toEqual([]);
  });
});
