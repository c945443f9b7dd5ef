// How a complete resumable upload becomes its attachment: an upload whose
// bytes came in one request adopts that request's part as the attachment's
// blob (the blob store's `copy`), so its bytes are written once; one sent in
// several requests is read back and streamed through the upload path. Seen
// through a blob store that counts the bytes streamed into `put`.
import { afterEach, describe, expect, it } from 'vitest';
import { digestsOf, patternBytes } from '../../testing/src/tus-suite.js';
import { watchedBlobs, type WatchedBlobs } from '../../testing/src/watched-blobs.js';
import type { EncryptionOptions } from '../src/crypto.js';
import { memoryBlobs } from '../src/memory/blobs.js';
import { memoryMetadata } from '../src/memory/metadata.js';
import { createAttachmentStore } from '../src/store.js';
import type { AttachmentStore } from '../src/types.js';

const SIZE = 300_000;
const encryption: EncryptionOptions = { keys: { k1: new Uint8Array(32).fill(3) }, activeKeyId: 'k1' };

let store: AttachmentStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

function storeWithWatchedBlobs(options: { encryption?: EncryptionOptions } = {}): { store: AttachmentStore; blobs: WatchedBlobs } {
  const blobs = watchedBlobs(memoryBlobs());
  store = createAttachmentStore({ metadata: memoryMetadata(), blobs, sweepIntervalSeconds: 0, ...options });
  return { store, blobs };
}

const streamOf = (bytes: Uint8Array) => new ReadableStream<Uint8Array>({ start: (controller) => (controller.enqueue(bytes), controller.close()) });

async function expectStored(store: AttachmentStore, id: string, bytes: Uint8Array): Promise<void> {
  const opened = await store.openAttachment({ id });
  expect(new Uint8Array(await new Response(opened.body).arrayBuffer())).toEqual(bytes);
  expect({ crc32: opened.attachment.crc32, sha256: opened.attachment.sha256 }).toEqual(digestsOf(bytes));
}

describe('resumable upload assembly', () => {
  for (const [label, options] of [['plaintext', {}], ['encrypted at rest', { encryption }]] as const) {
    it(`writes the bytes of an upload sent in one request once: its part becomes the document's blob (${label})`, async () => {
      const { store, blobs } = storeWithWatchedBlobs(options);
      const bytes = patternBytes(SIZE, 41);
      const created = await store.uploads.create({ length: SIZE, name: 'one.bin' });
      const done = await store.uploads.append(created.uploadId, { offset: 0, body: streamOf(bytes) });
      expect(done.complete).toBe(true);
      // The part's bytes (ciphertext is a little longer), and not a second copy.
      expect(blobs.bytesPut).toBeGreaterThanOrEqual(SIZE);
      expect(blobs.bytesPut).toBeLessThan(SIZE * 1.1);
      await expectStored(store, done.attachmentId!, bytes);
    });
  }

  it('adopts the part of a one-request upload into a lease transaction too: staged, then published by the commit', async () => {
    const { store, blobs } = storeWithWatchedBlobs();
    const bytes = patternBytes(SIZE, 42);
    const lease = await store.acquire({ key: 'videos/1', owner: 'test', ttlSeconds: 60 });
    const created = await store.uploads.create({ length: SIZE, name: 'clip.bin', lease });
    const done = await store.uploads.append(created.uploadId, { offset: 0, body: streamOf(bytes) });
    expect(blobs.bytesPut).toBe(SIZE);
    expect(await lease.list()).toMatchObject([{ id: done.attachmentId, size: SIZE, ...digestsOf(bytes) }]);
    await lease.release();
    await expectStored(store, done.attachmentId!, bytes);
  });

  it('reads an upload sent in two requests back and writes it whole (the CRC-32 of every part checked on the way)', async () => {
    const { store, blobs } = storeWithWatchedBlobs();
    const bytes = patternBytes(SIZE, 43);
    const created = await store.uploads.create({ length: SIZE, name: 'two.bin' });
    await store.uploads.append(created.uploadId, { offset: 0, body: streamOf(bytes.slice(0, 100_000)) });
    const done = await store.uploads.append(created.uploadId, { offset: 100_000, body: streamOf(bytes.slice(100_000)) });
    expect(blobs.bytesPut).toBe(2 * SIZE);
    await expectStored(store, done.attachmentId!, bytes);
  });
});
