// The MetadataStore port suite on @attache/sql/bun-sqlite, run by `bun test`
// (Bun's runner takes the suite's vitest imports as its own): bun:sqlite
// exists only inside Bun, where vitest does not run. bun.test.ts starts it
// from vitest. It sits here because this package carries the bun executable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bunSqliteMetadata } from '@attache/sql/bun-sqlite';
// The suite's own module: the package's index also brings vitest-only helpers (`inject`).
import { describeMetadataStore } from '../../../packages/testing/src/metadata-suite.js';
import { afterAll } from 'vitest';

const directory = mkdtempSync(join(tmpdir(), 'attache-bun-sqlite-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let opened = 0;
describeMetadataStore('bun:sqlite file', () => bunSqliteMetadata({ filename: join(directory, `attache-${++opened}.db`) }));
