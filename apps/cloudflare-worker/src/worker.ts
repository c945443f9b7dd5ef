// attache on Cloudflare Workers, with Workers-native storage only: blobs in
// R2 through the binding, metadata in a Durable Object's SQLite database.
//
// The engine needs atomic multi-statement transactions and exactly one
// winner per lease. D1 has no interactive transactions; a Durable Object is
// one single-threaded instance with its own transactional SQLite, so the
// whole engine runs inside one object (`AttacheObject`) and the Worker only
// forwards requests to it. One object serves every namespace here: simple,
// and strongly consistent; a deployment that outgrows one object's
// throughput would shard by namespace (one object per `idFromName(namespace)`).
//
// No process-level timers: expired leases are rolled back lazily on access,
// and by the sweeper that the object's alarm runs every SWEEP_INTERVAL_MS.
import { DurableObject } from 'cloudflare:workers';
import { createAttachmentStore, type AttachmentStore } from '@attache/core';
import { attacheApp } from '@attache/hono';
import { r2Blobs, type R2BucketLike } from '@attache/r2';
import { durableObjectMetadata } from '@attache/sql/durable-object';
import type { Hono } from 'hono';

export interface Env {
  ATTACHE: DurableObjectNamespace<AttacheObject>;
  BUCKET: R2Bucket;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  ATTACHE_TOKEN?: string;
  /** Largest accepted attachment in bytes (default: core's). */
  ATTACHE_MAX_BYTES?: string;
}

const SWEEP_INTERVAL_MS = 30_000;

export class AttacheObject extends DurableObject<Env> {
  readonly #store: AttachmentStore;
  readonly #app: Hono;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const metadata = durableObjectMetadata(ctx.storage);
    // The binding's types are richer than the store's structural ones.
    const blobs = r2Blobs({ bucket: env.BUCKET as unknown as R2BucketLike });
    const maxBytes = env.ATTACHE_MAX_BYTES === undefined ? undefined : Number(env.ATTACHE_MAX_BYTES);
    this.#store = createAttachmentStore({ metadata, blobs, maxBytes });
    this.#app = attacheApp({ store: this.#store, token: env.ATTACHE_TOKEN });
    // Requests wait until the schema exists and the sweep alarm is set.
    void ctx.blockConcurrencyWhile(async () => {
      await metadata.migrate();
      if ((await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(Date.now() + SWEEP_INTERVAL_MS);
    });
  }

  override async fetch(request: Request): Promise<Response> {
    return this.#app.fetch(request);
  }

  override async alarm(): Promise<void> {
    try {
      await this.#store.sweep();
    } finally {
      await this.ctx.storage.setAlarm(Date.now() + SWEEP_INTERVAL_MS);
    }
  }
}

export default {
  fetch(request, env) {
    return env.ATTACHE.get(env.ATTACHE.idFromName('attache')).fetch(request);
  },
} satisfies ExportedHandler<Env>;
