// The bundled Worker (dist/worker.js, as wrangler would deploy it) started in
// miniflare, which runs it in workerd with a SQLite-backed Durable Object and
// an R2 bucket simulated locally, listening on loopback.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { R2BucketLike } from '@attache/r2';
import { Miniflare } from 'miniflare';

const WORKER = fileURLToPath(new URL('../dist/worker.js', import.meta.url));

export interface RunningWorker {
  /** Where the API answers, e.g. `http://127.0.0.1:41234/v1`. */
  baseUrl: string;
  /** Miniflare's Node-side proxy of the binding: the bucket the Worker writes. */
  bucket: R2BucketLike;
  close(): Promise<void>;
}

/** Starts the Worker with `vars` as its environment (ATTACHE_* settings). */
export async function startWorker(vars: Record<string, string> = {}): Promise<RunningWorker> {
  if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run \`pnpm build\` first`);
  const miniflare = new Miniflare({
    modules: true,
    scriptPath: WORKER,
    compatibilityDate: '2026-04-01',
    host: '127.0.0.1',
    port: 0,
    durableObjects: { ATTACHE: { className: 'AttacheObject', useSQLite: true } },
    r2Buckets: ['BUCKET'],
    bindings: vars,
  });
  const url = await miniflare.ready;
  const bucket = (await miniflare.getR2Bucket('BUCKET')) as unknown as R2BucketLike;
  return { baseUrl: new URL('/v1', url).href, bucket, close: () => miniflare.dispose() };
}
