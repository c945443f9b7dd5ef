// The Hono example: attache's whole HTTP API under /v1 (with hono's request
// logger in front), and one route of the app's own, POST /avatar, that stores
// a form's file as a committed document. `createApp` is a plain Hono app and
// this module loads no database driver, so both runtimes share it: `node.ts`
// serves it on Node (node:http through @attache/node, better-sqlite3), `bun.ts` on Bun
// (Bun.serve, bun:sqlite).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createAttachmentStore, errorResponse, storeFormUpload, type AttachmentStore, type MetadataStore } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { attacheRoutes } from '@attache/hono';
import { Hono } from 'hono';
import { logger } from 'hono/logger';

export const HOST = '127.0.0.1';
export const DEFAULT_PORT = 3000;
export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;
/** How long `close()` waits for in-flight requests before dropping their connections. */
export const SHUTDOWN_GRACE_MS = 10_000;

/** What POST /avatar answers. */
export interface AvatarJson {
  id: string;
  ref: string;
  size: number;
  sha256: string;
}

/** Opens the SQLite metadata store in `filename` with the runtime's driver. */
export type OpenSqliteMetadata = (filename: string) => MetadataStore;

/** The embedded store, as `attache serve` builds it: `<dataDir>/attache.db` (SQLite) and `<dataDir>/blobs/`. */
export async function openStore(dataDir: string, openMetadata: OpenSqliteMetadata): Promise<AttachmentStore> {
  const blobsRoot = join(dataDir, 'blobs');
  await mkdir(blobsRoot, { recursive: true });
  const metadata = openMetadata(join(dataDir, 'attache.db'));
  try {
    // A broken database stops the start instead of failing the first request.
    await metadata.migrate();
  } catch (error) {
    await metadata.close();
    throw error;
  }
  // A long-running server asks for the sweeper's timer (core starts none by itself).
  // Blobs up to 64 KiB live in the database, as with `attache serve`: a small upload is one write, no file.
  return createAttachmentStore({ metadata, blobs: fsBlobs({ root: blobsRoot }), inlineBlobMaxBytes: 64 * 1024, sweepIntervalSeconds: 30 });
}

/** `PORT` from the environment: default 3000, 0 for any free port. */
export function parsePort(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_PORT;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`PORT must be an integer from 0 to 65535, got "${text}"`);
  return port;
}

export interface AppOptions {
  store: AttachmentStore;
  /** Where `logger()` writes its lines (default `console.log`). */
  log?: (line: string) => void;
}

export function createApp({ store, log }: AppOptions): Hono {
  const app = new Hono();
  app.use(log === undefined ? logger() : logger(log));
  app.route('/v1', attacheRoutes({ store }));

  // Core's in-app upload entry streams the form's file into the store (nothing
  // is held in memory); core's error mapper answers its mistakes.
  app.post('/avatar', async (c) => {
    try {
      const { attachments } = await storeFormUpload(c.req.raw, store, { field: 'file', maxFiles: 1, maxBytes: AVATAR_MAX_BYTES });
      const attachment = attachments[0]!;
      const answer: AvatarJson = { id: attachment.id, ref: `attachment://${attachment.id}`, size: attachment.size, sha256: attachment.sha256 };
      return c.json(answer, 201);
    } catch (error) {
      return errorResponse(error, { quiet: c.req.raw.signal.aborted });
    }
  });
  return app;
}
