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
// and by the sweeper that the object's alarm runs (every 30 s by default).
import { DurableObject } from 'cloudflare:workers';
import { createAttachmentStore, parseCorsOrigins, type AttachmentStore } from '@attache/core';
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
  /** Seconds between the alarm's sweeps (default 30). */
  ATTACHE_SWEEP_INTERVAL_SECONDS?: string;
  /** Seconds a replaced or promoted R2 object stays for downloads still streaming it (default 60). */
  ATTACHE_DELETE_GRACE_SECONDS?: string;
  /** Browser origins allowed to call the API (CORS): `https://app.example.com[,...]` or `*` (default: none). */
  ATTACHE_CORS_ORIGINS?: string;
}

const DEFAULT_SWEEP_INTERVAL_SECONDS = 30;

export class AttacheObject extends DurableObject<Env> {
  readonly #store: AttachmentStore;
  readonly #app: Hono;
  readonly #sweepIntervalMs: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const metadata = durableObjectMetadata(ctx.storage);
    // The binding's types are richer than the store's structural ones.
    const blobs = r2Blobs({
      bucket: env.BUCKET as unknown as R2BucketLike,
      deleteGraceSeconds: env.ATTACHE_DELETE_GRACE_SECONDS === undefined ? undefined : Number(env.ATTACHE_DELETE_GRACE_SECONDS),
    });
    const maxBytes = env.ATTACHE_MAX_BYTES === undefined ? undefined : Number(env.ATTACHE_MAX_BYTES);
    this.#sweepIntervalMs = Number(env.ATTACHE_SWEEP_INTERVAL_SECONDS ?? DEFAULT_SWEEP_INTERVAL_SECONDS) * 1000;
    this.#store = createAttachmentStore({ metadata, blobs, maxBytes });
    // A malformed origin throws here: every request fails until the variable is fixed, rather than CORS silently off.
    const cors = env.ATTACHE_CORS_ORIGINS ? parseCorsOrigins(env.ATTACHE_CORS_ORIGINS) : undefined;
    this.#app = attacheApp({ store: this.#store, token: env.ATTACHE_TOKEN, cors });
    // Requests wait until the schema exists and the sweep alarm is set.
    void ctx.blockConcurrencyWhile(async () => {
      await metadata.migrate();
      if ((await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(Date.now() + this.#sweepIntervalMs);
    });
  }

  override async fetch(request: Request): Promise<Response> {
    return withKnownLength(await this.#app.fetch(request));
  }

  override async alarm(): Promise<void> {
    try {
      await this.#store.sweep();
    } finally {
      await this.ctx.storage.setAlarm(Date.now() + this.#sweepIntervalMs);
    }
  }
}

/**
 * workerd sends a body stream of unknown length chunked, dropping the
 * Content-Length the handler set (downloads would show no progress); a
 * FixedLengthStream of that length keeps it, and fails the response if the
 * body turns out shorter or longer.
 */
function withKnownLength(response: Response): Response {
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  if (response.body === null || !Number.isSafeInteger(length) || length < 0) return response;
  const fixed = new FixedLengthStream(length);
  void response.body.pipeTo(fixed.writable).catch(() => {});
  return new Response(fixed.readable, response);
}

export default {
  fetch(request, env) {
    return env.ATTACHE.get(env.ATTACHE.idFromName('attache')).fetch(request);
  },
} satisfies ExportedHandler<Env>;
