// What a document upload costs in metadata transactions: each one is a
// commit (and an fsync) on a durable store.
import { describe, expect, it, vi } from 'vitest';
import { createAttachmentStore, memoryBlobs, memoryMetadata } from '../src/index.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('createDocuments', () => {
  it('takes four metadata transactions: acquire, the staged row, the commit, and the promotion after the answer', async () => {
    const metadata = memoryMetadata();
    const store = createAttachmentStore({ metadata, blobs: memoryBlobs() });
    // The schema check before the first call is not part of an upload.
    await store.createDocuments([{ name: 'warm-up.txt', body: bytes('w') }]);
    await store.settled();
    const transactions = vi.spyOn(metadata, 'transaction');

    const [document] = await store.createDocuments([{ name: 'a.txt', body: bytes('a') }]);
    await store.settled();
    expect(transactions).toHaveBeenCalledTimes(4);
    expect(new TextDecoder().decode(await new Response((await store.openAttachment({ id: document!.id })).body).arrayBuffer())).toBe('a');
    await store.close();
  });
});
