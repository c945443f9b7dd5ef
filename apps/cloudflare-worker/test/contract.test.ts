// The shared HTTP contract against the bundled Worker in miniflare (workerd,
// a SQLite-backed Durable Object, R2 simulated locally), driven over real
// HTTP from Node. The metadata lives inside the Durable Object, so the
// scenarios that write through the TypeScript store in this process are
// skipped; blobs are checked by listing the R2 bucket miniflare simulates.
import { r2Blobs } from '@attache/r2';
import { describeExternalHttpContract } from '@attache/testing';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterAll, beforeAll } from 'vitest';
import { startWorker } from './miniflare.js';

// workerd closes a connection once it has answered a request whose body it
// did not read (a 413 past max_bytes) without saying so, and a client that
// reuses that kept-alive connection sees a reset. Cloudflare's edge stands
// between real clients and a deployed Worker; here every request gets a
// connection of its own instead.
const keptAlive = getGlobalDispatcher();
beforeAll(() => setGlobalDispatcher(new Agent({ pipelining: 0 })));
afterAll(() => setGlobalDispatcher(keptAlive));

describeExternalHttpContract(
  'Cloudflare Worker in miniflare (Durable Object + R2)',
  async () => {
    // The suite checks what is left in the bucket once a change settles.
    const worker = await startWorker({ ATTACHE_DELETE_GRACE_SECONDS: '0' });
    return { baseUrl: worker.baseUrl, blobs: r2Blobs({ bucket: worker.bucket }), close: () => worker.close() };
  },
  // workerd may close the connection before a client sending a large body
  // reads the early 413; a client hanging up does not reach the object.
  { storeInProcess: false, writesInFlight: false, earlyAnswerDelivered: false, hangUpReachesHandler: false, forbiddenMethodsReachMount: false },
);
