// What a document upload costs in metadata transactions (each one is a
// commit, and an fsync, on a durable store), and that the cheap path for a
// lone document keeps the all-or-nothing rule of a call with several.
import { describe, expect, it, vi } from 'vitest';
import { AttacheError, createAttachmentStore, memoryBlobs, memoryMetadata, type BlobStore } from '../src/index.js';

const bytes = (text: string) => new TextEncoder().encode(text);

async function blobPaths(blobs: BlobStore): Promise<string[]> {
  const paths: string[] = [];
  for await (const blob of blobs.list('')) paths.push(blob.path);
  return paths.sort();
}

async function setup() {
  const metadata = memoryMetadata();
  const blobs = memoryBlobs();
  const store = createAttachmentStore({ metadata, blobs, orphanGraceSeconds: 0 });
  // The schema check before the first call is not part of an upload.
  await store.createDocuments([{ name: 'warm-up.txt', body: bytes('w') }]);
  await store.settled();
  const before = await blobPaths(blobs);
  return { metadata, blobs, store, before };
}

async function textOf(store: Awaited<ReturnType<typeof setup>>['store'], id: string): Promise<string> {
  return new TextDecoder().decode(await new Response((await store.openAttachment({ id })).body).arrayBuffer());
}

describe('createDocuments', () => {
  it('publishes a lone document with one metadata transaction, its blob written once at the committed path', async () => {
    const { metadata, blobs, store, before } = await setup();
    const transactions = vi.spyOn(metadata, 'transaction');
    const copies = vi.spyOn(blobs, 'copy');

    const [document] = await store.createDocuments([{ name: 'a.txt', body: bytes('a') }]);
    await store.settled();
    expect(transactions).toHaveBeenCalledTimes(1);
    expect(copies).not.toHaveBeenCalled();
    const added = (await blobPaths(blobs)).filter((path) => !before.includes(path));
    expect(added).toEqual([expect.stringMatching(new RegExp(`^state/default/${document!.id}/attachments/[0-9a-f-]{36}$`))]);
    expect(await textOf(store, document!.id)).toBe('a');
    expect((await store.sweep()).orphansDeleted).toBe(0);
    await store.close();
  });

  it('leaves no blob behind when a lone document is refused (checksum mismatch)', async () => {
    const { blobs, store, before } = await setup();
    await expect(store.createDocuments([{ name: 'a.txt', body: bytes('a'), expectedCrc32: '00000000' }])).rejects.toMatchObject({
      code: 'checksum_mismatch',
    });
    await store.settled();
    expect(await blobPaths(blobs)).toEqual(before);
    await store.close();
  });

  it('commits several documents of one call together: the first joins the transaction when the second arrives', async () => {
    const { blobs, store, before } = await setup();
    const created = await store.createDocuments([
      { name: 'a.txt', body: bytes('a') },
      { name: 'b.txt', body: bytes('b') },
      { name: 'c.txt', body: bytes('c') },
    ]);
    await store.settled();
    expect(await Promise.all(created.map((document) => textOf(store, document.id)))).toEqual(['a', 'b', 'c']);
    // Every blob is at its committed path: nothing staged is left, nothing orphaned.
    const added = (await blobPaths(blobs)).filter((path) => !before.includes(path));
    expect(added).toHaveLength(3);
    expect(added.every((path) => !path.includes('~staging'))).toBe(true);
    expect((await store.sweep()).orphansDeleted).toBe(0);
    await store.close();
  });

  it('keeps none of a call whose later document fails, the first one included', async () => {
    const { blobs, store, before } = await setup();
    async function* parts() {
      yield { name: 'a.txt', body: bytes('a') };
      yield { name: 'b.txt', body: bytes('bb'), expectedSize: 1 };
    }
    const failure = await store.createDocuments(parts()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AttacheError);
    expect((failure as AttacheError).code).toBe('size_mismatch');
    await store.settled();
    expect(await blobPaths(blobs)).toEqual(before);
    await store.close();
  });

  it('keeps no blob of a lone document whose source fails mid-stream', async () => {
    const { blobs, store, before } = await setup();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes('half'));
        controller.error(new Error('client went away'));
      },
    });
    await expect(store.createDocuments([{ name: 'a.txt', body }])).rejects.toThrow();
    await store.settled();
    expect(await blobPaths(blobs)).toEqual(before);
    await store.close();
  });
});
