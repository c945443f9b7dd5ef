// The shared HTTP contract against the bundled Worker in miniflare (workerd,
// a SQLite-backed Durable Object, R2 simulated locally), driven over real
// HTTP from Node. The metadata lives inside the Durable Object, so the
// scenarios that write through the TypeScript store in this process are
// skipped; blobs are checked by listing the R2 bucket miniflare simulates.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { r2Blobs, type R2BucketLike } from '@attache/r2';
import { describeExternalHttpContract } from '@attache/testing';
import { Miniflare } from 'miniflare';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterAll, beforeAll } from 'vitest';

// workerd closes a connection once it has answered a request whose body it
// did not read (a 413 past max_bytes) without saying so, and a client that
// reuses that kept-alive connection sees a reset. Cloudflare's edge stands
// between real clients and a deployed Worker; here every request gets a
// connection of its own instead.
const keptAlive = getGlobalDispatcher();
beforeAll(() => setGlobalDispatcher(new Agent({ pipelining: 0 })));
afterAll(() => setGlobalDispatcher(keptAlive));

const WORKER = fileURLToPath(new URL('../dist/worker.js', import.meta.url));

describeExternalHttpContract(
  'Cloudflare Worker in miniflare (Durable Object + R2)',
  async () => {
    if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run \`pnpm build\` first`);
    const miniflare = new Miniflare({
      modules: true,
      scriptPath: WORKER,
      compatibilityDate: '2026-04-01',
      host: '127.0.0.1',
      port: 0,
      durableObjects: { ATTACHE: { className: 'AttacheObject', useSQLite: true } },
      r2Buckets: ['BUCKET'],
      // The suite checks what is left in the bucket once a change settles.
      bindings: { ATTACHE_DELETE_GRACE_SECONDS: '0' },
    });
    const url = await miniflare.ready;
    const bucket = (await miniflare.getR2Bucket('BUCKET')) as unknown as R2BucketLike;
    return {
      baseUrl: new URL('/v1', url).href,
      blobs: r2Blobs({ bucket }),
      close: () => miniflare.dispose(),
    };
  },
  // workerd may close the connection before a client sending a large body
  // reads the early 413; a client hanging up does not reach the object.
  { storeInProcess: false, writesInFlight: false, earlyAnswerDelivered: false, hangUpReachesHandler: false },
);
