// Uploads that never finish: the client's socket is destroyed half-way
// through the body, or the lease runs out while bytes flow. Whatever the
// adapter, the engine must see a failed body (not a short one) and keep
// nothing: no staged row, no blob.
import { describe, expect, it } from 'vitest';
import { BOUNDARY, MULTIPART, concat, multipartBody, partHead, patternBytes, streamingUpload } from './bodies.js';
import { freshKey, leaseHeaders, waitFor, type ContractServer, type LeaseJson } from './harness.js';
import type { ContractContext } from './context.js';

const HALF = 256 * 1024;

/** How long the server gets to take the first half when its writes in flight cannot be watched. */
const UNWATCHED_TAKE_MS = 500;

/**
 * Sends `head` then `HALF` bytes, waits until the engine has streamed them
 * into the blob store (so the upload is truly under way), then drops the
 * connection and waits for the engine to give up. Where the server's writes
 * in flight cannot be seen (`supports.writesInFlight`), it gives the server
 * a moment instead, and the scenario's own checks wait for nothing to be kept.
 */
async function abortMidBody(
  context: ContractContext,
  url: string,
  headers: Record<string, string>,
  options: { head?: Uint8Array; contentLength?: number } = {},
): Promise<void> {
  const { server, supports } = context;
  const upload = streamingUpload(url, headers, options.contentLength);
  const startedAt = server.blobs.bytesPut;
  if (options.head) await upload.write(options.head);
  await upload.write(patternBytes(HALF));
  if (supports.writesInFlight) {
    await waitFor('the engine to stream the first half into the blob store', () => server.blobs.bytesPut - startedAt >= HALF / 2);
  } else {
    await new Promise((resolve) => setTimeout(resolve, UNWATCHED_TAKE_MS));
  }
  upload.destroy();
  if (supports.writesInFlight) {
    await waitFor('the aborted upload to settle', () => server.blobs.putsInFlight === 0);
  } else {
    // And as long again to give up, so the checks that follow see the outcome.
    await new Promise((resolve) => setTimeout(resolve, UNWATCHED_TAKE_MS));
  }
}

/** The blob paths under `prefix` once the background work of earlier calls is done. */
async function settledPaths(context: ContractContext, prefix: string): Promise<string[]> {
  await context.server.settled();
  return context.server.blobs.paths(prefix);
}

async function expectNothingKept(server: ContractServer, lease: LeaseJson): Promise<void> {
  expect(await server.http.namesUnderLease(lease)).toEqual([]);
  expect(await server.blobs.ofLease(lease)).toEqual([]);
}

export function abortScenarios(context: ContractContext): void {
  describe('client aborts and expiry mid-upload', () => {
    it('keeps nothing of a chunked raw upload whose client disconnects half-way', async () => {
      const { server, http } = context;
      const lease = await http.acquire(freshKey('abort'));
      await abortMidBody(context, http.url('/attachments', { key: lease.key, name: 'cut.bin' }), leaseHeaders(lease));
      await expectNothingKept(server, lease);
      // The lease is unharmed: a later upload commits, without the aborted one.
      expect((await http.uploadRaw(lease, 'whole.bin', 'complete')).status).toBe(200);
      await http.release(lease);
      expect((await http.committed(lease.key)).map((a) => a.name)).toEqual(['whole.bin']);
    });

    it('keeps nothing of a raw upload with Content-Length whose client disconnects half-way', async () => {
      const { server, http } = context;
      const lease = await http.acquire(freshKey('abort'));
      await abortMidBody(context, http.url('/attachments', { key: lease.key, name: 'cut.bin' }), leaseHeaders(lease), {
        contentLength: HALF * 2,
      });
      await expectNothingKept(server, lease);
    });

    it('keeps none of the parts of a multipart upload whose client disconnects in the second part', async () => {
      const { server, http } = context;
      const lease = await http.acquire(freshKey('abort'));
      const firstPart = multipartBody([{ name: 'a', filename: 'first.txt', data: 'the first part is complete' }]);
      // The envelope without its closing delimiter, then the second part's head.
      const head = concat([firstPart.slice(0, firstPart.length - `--${BOUNDARY}--\r\n`.length), partHead({ name: 'b', filename: 'second.bin' })]);
      await abortMidBody(context, http.url('/attachments', { key: lease.key }), { ...leaseHeaders(lease), 'Content-Type': MULTIPART }, { head });
      await expectNothingKept(server, lease);
    });

    it('keeps no document of a document upload whose client disconnects half-way', async () => {
      const { server, http } = context;
      const before = await settledPaths(context, 'state/');
      await abortMidBody(context, http.url('/attachments', { name: 'cut.pdf' }), { 'Content-Type': 'application/pdf' });
      expect(await settledPaths(context, 'state/')).toEqual(before);
    });

    it.skipIf(!context.supports.clock)('fails an upload with 403 lease_expired when the lease runs out while its body streams, keeping nothing', async () => {
      const { server, http } = context;
      const lease = await http.acquire(freshKey('abort'), { ttl_seconds: 30 });
      const upload = streamingUpload(http.url('/attachments', { key: lease.key, name: 'slow.bin' }), leaseHeaders(lease));
      const startedAt = server.blobs.bytesPut;
      await upload.write(patternBytes(HALF));
      await waitFor('the engine to stream the first half', () => server.blobs.bytesPut - startedAt >= HALF / 2);
      server.advance(60);
      await upload.write(patternBytes(HALF));
      const answer = await upload.finish();
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'lease_expired' });
      expect(await server.blobs.ofLease(lease)).toEqual([]);
      const next = await http.acquire(lease.key);
      expect(await http.namesUnderLease(next)).toEqual([]);
    });
  });
}
