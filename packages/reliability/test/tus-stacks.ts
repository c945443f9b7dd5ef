// Stores and mounts for the tus tests: SQLite or PostgreSQL metadata with
// file-system blobs, served over loopback HTTP by @attache/node, Express,
// Hono or NestJS (each through its own package, as an application mounts it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createAttachmentStore, type AttachmentStore, type BlobStore, type MetadataStore } from '@attache/core';
import { createHandler } from '@attache/core/http';
import { attache } from '@attache/express';
import { fsBlobs } from '@attache/fs';
import { s3Blobs } from '@attache/s3';
import { attacheRoutes } from '@attache/hono';
import { AttacheModule } from '@attache/nestjs';
import { toNodeListener } from '@attache/node';
import { postgresMetadata } from '@attache/sql/postgres';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { listenOnLoopback, type S3Connection, type TusMountOptions, type TusServer } from '@attache/testing';
import { serve } from '@hono/node-server';
import { NestFactory } from '@nestjs/core';
import express from 'express';
import { Hono } from 'hono';

export type Adapter = 'node' | 'express' | 'hono' | 'nestjs';

export interface StoreOnDisk {
  store: AttachmentStore;
  blobs: BlobStore;
  advance(ms: number): void;
  close(): Promise<void>;
}

/** A store on `metadata` with blobs in a new temporary directory (or `blobRoot`, to share it between instances). */
export function storeOnDisk(metadata: MetadataStore, options: TusMountOptions & { blobRoot?: string } = {}): StoreOnDisk {
  const owned = options.blobRoot === undefined ? mkdtempSync(join(tmpdir(), 'attache-tus-')) : undefined;
  const blobs = fsBlobs({ root: options.blobRoot ?? owned! });
  let skew = 0;
  const { blobRoot: _root, ...storeOptions } = options;
  const store = createAttachmentStore({ metadata, blobs, now: () => Date.now() + skew, ...storeOptions });
  return {
    store,
    blobs,
    advance: (ms) => void (skew += ms),
    close: async () => {
      await store.close();
      if (owned) rmSync(owned, { recursive: true, force: true });
    },
  };
}

/** SQLite metadata with blobs on S3 (radosgw) under a fresh key prefix. */
export function sqliteS3Store(s3: S3Connection, options: TusMountOptions = {}): StoreOnDisk {
  const dir = mkdtempSync(join(tmpdir(), 'attache-tus-db-'));
  const blobs = s3Blobs({
    bucket: s3.bucket,
    prefix: `tus-${Date.now()}-${Math.random().toString(36).slice(2)}/`,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: s3.credentials,
    forcePathStyle: true,
  });
  let skew = 0;
  const store = createAttachmentStore({
    metadata: sqliteMetadata({ filename: join(dir, 'attache.db') }),
    blobs,
    now: () => Date.now() + skew,
    ...options,
  });
  return {
    store,
    blobs,
    advance: (ms) => void (skew += ms),
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function sqliteStore(options: TusMountOptions = {}): StoreOnDisk {
  const dir = mkdtempSync(join(tmpdir(), 'attache-tus-db-'));
  const onDisk = storeOnDisk(sqliteMetadata({ filename: join(dir, 'attache.db') }), options);
  return {
    ...onDisk,
    close: async () => {
      await onDisk.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function postgresStore(connectionString: string, options: TusMountOptions & { blobRoot?: string } = {}): StoreOnDisk {
  return storeOnDisk(postgresMetadata({ connectionString }), options);
}

/** Serves `store` at `/v1` through one adapter on 127.0.0.1. */
export async function mountOn(adapter: Adapter, store: AttachmentStore): Promise<{ baseUrl: string; close(): Promise<void> }> {
  if (adapter === 'node') return listenOnLoopback(toNodeListener(createHandler({ store })));
  if (adapter === 'express') {
    const app = express();
    app.use('/v1', attache({ store }));
    return listenOnLoopback(app);
  }
  if (adapter === 'nestjs') {
    // As the package's README creates it: the module at /v1, Nest's body parser off.
    const app = await NestFactory.create(AttacheModule.forRoot({ store }), { logger: ['error', 'warn'], forceCloseConnections: true, bodyParser: false });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    return { baseUrl: `http://127.0.0.1:${port}/v1`, close: () => app.close() };
  }
  const app = new Hono().route('/v1', attacheRoutes({ store }));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: async () => {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await closing;
    },
  };
}

/** A `TusServer` for the shared suite: `onDisk` served through `adapter`. */
export async function tusServer(onDisk: StoreOnDisk, adapter: Adapter): Promise<TusServer> {
  const mounted = await mountOn(adapter, onDisk.store);
  return {
    baseUrl: mounted.baseUrl,
    store: onDisk.store,
    blobs: onDisk.blobs,
    advance: onDisk.advance,
    close: async () => {
      await mounted.close();
      await onDisk.close();
    },
  };
}
