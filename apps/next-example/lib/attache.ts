// The embedded store (SQLite + local files under the data dir, as `attache
// serve` builds it) and core's Web handler over it, opened once per server
// process on the first request.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AttacheHandler } from '@attache/core';
import { API_BASE_PATH } from './api-path';
import { readConfig } from './config';

// Next may evaluate this module more than once in one process (one copy per
// route bundle); the handler lives on globalThis so that they all share one
// SQLite connection and one sweeper.
const HANDLER_SLOT = Symbol.for('attache.next-example.handler');
type Slots = { [HANDLER_SLOT]?: Promise<AttacheHandler> };

export function attacheHandler(): Promise<AttacheHandler> {
  const slots = globalThis as Slots;
  const existing = slots[HANDLER_SLOT];
  if (existing !== undefined) return existing;
  const opening = openHandler();
  slots[HANDLER_SLOT] = opening;
  // A failed start (a broken database, say) is retried by the next request.
  opening.catch(() => {
    if (slots[HANDLER_SLOT] === opening) delete slots[HANDLER_SLOT];
  });
  return opening;
}

async function openHandler(): Promise<AttacheHandler> {
  // Node loads attache's packages at run time, as published (dist/): the
  // bundler would otherwise compile these workspace packages into the route
  // (`serverExternalPackages` only applies to packages it finds under
  // node_modules), and it can follow neither @attache/sql's driver loading
  // (`createRequire`) nor the fs store's run-time paths.
  const [{ createAttachmentStore, createHandler }, { fsBlobs }, { sqliteMetadata }] = await Promise.all([
    import(/* turbopackIgnore: true */ /* webpackIgnore: true */ '@attache/core'),
    import(/* turbopackIgnore: true */ /* webpackIgnore: true */ '@attache/fs'),
    import(/* turbopackIgnore: true */ /* webpackIgnore: true */ '@attache/sql/sqlite'),
  ]);
  const { dataDir, maxBytes } = readConfig();
  const blobsRoot = join(dataDir, 'blobs');
  await mkdir(blobsRoot, { recursive: true });
  const metadata = sqliteMetadata({ filename: join(dataDir, 'attache.db') });
  try {
    await metadata.migrate();
  } catch (error) {
    await metadata.close();
    throw error;
  }
  // A long-running server asks for the sweeper's timer (core starts none by
  // itself): expired leases are rolled back and orphans removed every 30 s.
  // Blobs up to 64 KiB live in the database, as with `attache serve`: a small upload is one write, no file.
  const store = createAttachmentStore({ metadata, blobs: fsBlobs({ root: blobsRoot }), maxBytes, inlineBlobMaxBytes: 64 * 1024, sweepIntervalSeconds: 30 });
  return createHandler({ store, basePath: API_BASE_PATH });
}
