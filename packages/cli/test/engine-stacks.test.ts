// The engine specification on the embedded default stack: SQLite + local
// files, with a real restart (new port instances over the same files).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsBlobs } from '@attache/fs';
import { sqliteMetadata } from '@attache/sql';
import { describeAttachmentEngine } from '@attache/testing';
import { afterAll } from 'vitest';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

let current = '';
const portsAt = (dir: string) => ({
  metadata: sqliteMetadata({ filename: join(dir, 'attache.db') }),
  blobs: fsBlobs({ root: join(dir, 'blobs') }),
});

describeAttachmentEngine('sqlite + fs', {
  create: async () => {
    current = mkdtempSync(join(tmpdir(), 'attache-engine-'));
    dirs.push(current);
    return portsAt(current);
  },
  reopen: async () => portsAt(current),
});
