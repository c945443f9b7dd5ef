// Small blobs inline in the metadata store: the wrapped store keeps the
// BlobStore contract (the shared suite, with blobs on both sides of the
// threshold), and each blob lands on the side its size says.
import { describe, expect, it } from 'vitest';
import { inlineSmallBlobs } from '../src/inline-blobs.js';
import { memoryBlobs } from '../src/memory/blobs.js';
import { memoryMetadata } from '../src/memory/metadata.js';
import type { BlobStore, MetadataStore } from '../src/ports.js';
import { createAttachmentStore } from '../src/store.js';
import type { CrashPoint } from '../src/crash-points.js';
import { committedBlobPath, isStagedPath } from '../src/paths.js';
import { asIterable } from './as-iterable.js';
import { bytesStream, describeBlobStore, patternStream, readBytes } from '../../testing/src/blob-suite.js';

const MAX = 1000;

// Every scenario of the suite, with bodies below and above the threshold.
describeBlobStore('inlineSmallBlobs over memoryBlobs', () => inlineSmallBlobs(memoryBlobs(), memoryMetadata(), { maxBytes: MAX, now: Date.now }));

function fixture() {
  const metadata = memoryMetadata();
  const inner = memoryBlobs();
  const store = inlineSmallBlobs(inner, metadata, { maxBytes: MAX, now: () => 1234 });
  return { metadata, inner, store };
}

async function innerPaths(blobs: BlobStore): Promise<string[]> {
  const paths: string[] = [];
  for await (const blob of blobs.list('')) paths.push(blob.path);
  return paths.sort();
}

async function inlinePaths(metadata: MetadataStore): Promise<string[]> {
  return (await metadata.transaction((tx) => tx.listBlobData!('', undefined, 10_000))).map((blob) => blob.path);
}

describe('inlineSmallBlobs', () => {
  it('keeps a blob of at most maxBytes in the metadata store, and a larger one in the wrapped store', async () => {
    const { metadata, inner, store } = fixture();
    await store.put('a/exactly', patternStream(MAX, 300));
    await store.put('a/over', patternStream(MAX + 1, 300));
    await store.put('a/empty', bytesStream());
    expect(await inlinePaths(metadata)).toEqual(['a/empty', 'a/exactly']);
    expect(await innerPaths(inner)).toEqual(['a/over']);
    expect((await readBytes((await store.get('a/over'))!)).byteLength).toBe(MAX + 1);
    expect(await store.stat('a/exactly')).toEqual({ path: 'a/exactly', size: MAX, modifiedAt: 1234 });
  });

  it('hands the wrapped store the bytes it read before it knew, then the rest, in order', async () => {
    const { inner, store } = fixture();
    const source = patternStream(5 * MAX + 7, 333);
    const expected = await readBytes(patternStream(5 * MAX + 7, 333));
    expect(await store.put('big', source)).toEqual({ size: 5 * MAX + 7 });
    expect(await readBytes((await inner.get('big'))!)).toEqual(expected);
  });

  it('serves the newest bytes when a path is put again on the other side', async () => {
    const { metadata, inner, store } = fixture();
    await store.put('p', bytesStream('small'));
    await store.put('p', patternStream(MAX * 2, 500));
    expect(await inlinePaths(metadata)).toEqual([]);
    expect((await readBytes((await store.get('p'))!)).byteLength).toBe(MAX * 2);
    await store.put('p', bytesStream('small again'));
    expect(new TextDecoder().decode(await readBytes((await store.get('p'))!))).toBe('small again');
    await store.delete('p');
    expect(await store.get('p')).toBeUndefined();
    expect(await innerPaths(inner)).toEqual([]);
  });

  it('copies inline blobs inline and others through the wrapped store', async () => {
    const { metadata, inner, store } = fixture();
    await store.put('s', bytesStream('tiny'));
    await store.put('l', patternStream(MAX + 10, 400));
    await store.copy('s', 's2');
    await store.copy('l', 'l2');
    expect(await inlinePaths(metadata)).toEqual(['s', 's2']);
    expect(await innerPaths(inner)).toEqual(['l', 'l2']);
  });

  it('lists both sides, paging through more inline blobs than one listing transaction reads', async () => {
    const { store } = fixture();
    const expected: string[] = [];
    for (let i = 0; i < 1203; i++) {
      const path = `n/${String(i).padStart(5, '0')}`;
      expected.push(path);
      await store.put(path, bytesStream('x'));
    }
    await store.put('n/large', patternStream(MAX + 1, 512));
    await store.put('other/1', bytesStream('y'));
    expected.push('n/large');
    const listed: string[] = [];
    for await (const blob of store.list('n/')) listed.push(blob.path);
    expect(listed.sort()).toEqual(expected.sort());
  });

  it('leaves a small blob\'s durability to the row its caller writes next (metadataWriteFollows), and makes it durable itself otherwise', async () => {
    const { metadata, seen } = recordingDurability(memoryMetadata());
    const store = inlineSmallBlobs(memoryBlobs(), metadata, { maxBytes: MAX, now: Date.now });
    await store.put('followed', bytesStream(new Uint8Array(10)), { metadataWriteFollows: true });
    expect(seen.splice(0).at(-1)).toBe(false);
    await store.put('alone', bytesStream(new Uint8Array(10)));
    expect(seen.splice(0).at(-1)).toBe(true);
  });

  it('stores nothing when the stream fails before the threshold', async () => {
    const { metadata, inner, store } = fixture();
    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(10));
        controller.error(new Error('client went away'));
      },
    });
    await expect(store.put('f', failing)).rejects.toThrow('client went away');
    expect(await inlinePaths(metadata)).toEqual([]);
    expect(await innerPaths(inner)).toEqual([]);
  });
});

/** `metadata`, recording whether each transaction asked to be answered only once durable. */
function recordingDurability(inner: MetadataStore): { metadata: MetadataStore; seen: boolean[] } {
  const seen: boolean[] = [];
  return {
    seen,
    metadata: {
      ...inner,
      transaction: (fn, options) => {
        seen.push(options?.durable !== false);
        return inner.transaction(fn, options);
      },
    },
  };
}

describe('createAttachmentStore({ inlineBlobMaxBytes })', () => {
  it('writes a small upload\'s blob without waiting for its durability, then its row durably: one fsync for both', async () => {
    const { metadata, seen } = recordingDurability(memoryMetadata());
    const store = createAttachmentStore({ metadata, blobs: memoryBlobs(), inlineBlobMaxBytes: 1024 });
    await store.createDocuments([{ name: 'a.txt', body: new TextEncoder().encode('small') }]);
    // The migration's transactions come first; the last two are the blob's data and the document's row.
    expect(seen.slice(-2)).toEqual([false, true]);
    const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
    seen.length = 0;
    await lease.attach({ name: 'b.txt', body: new TextEncoder().encode('small too') });
    expect(seen).toContain(false);
    expect(seen.at(-1)).toBe(true);
    await lease.release();
    await store.close();
  });

  it('lets a resumable upload\'s part and a key rotation skip the blob\'s own fsync too: their rows follow, durably', async () => {
    const { metadata, seen } = recordingDurability(memoryMetadata());
    const blobs = memoryBlobs();
    const k1 = new Uint8Array(32).fill(1);
    const store = createAttachmentStore({ metadata, blobs, inlineBlobMaxBytes: 1024, encryption: { keys: { k1 }, activeKeyId: 'k1' } });
    const upload = await store.uploads.create({ length: 10, name: 'r.bin' });
    seen.length = 0;
    const first = await store.uploads.append(upload.uploadId, { offset: 0, body: bytesStream(new Uint8Array(4).fill(7)) });
    expect(first.offset).toBe(4);
    // The part's blob without waiting for durability, then (after it) the part's row, durably.
    expect(seen.indexOf(false)).toBeGreaterThanOrEqual(0);
    expect(seen.lastIndexOf(true)).toBeGreaterThan(seen.indexOf(false));
    await store.uploads.append(upload.uploadId, { offset: 4, body: bytesStream(new Uint8Array(6).fill(8)) });
    await store.settled();
    const rotating = createAttachmentStore({ metadata, blobs, inlineBlobMaxBytes: 1024, encryption: { keys: { k1, k2: new Uint8Array(32).fill(2) }, activeKeyId: 'k2' } });
    seen.length = 0;
    expect((await rotating.rotateKeys()).rotated).toBeGreaterThan(0);
    expect(seen).toContain(false);
    const id = (await store.uploads.status(upload.uploadId)).attachmentId!;
    expect(await readBytes((await rotating.openAttachment({ id })).body)).toEqual(new Uint8Array([7, 7, 7, 7, 8, 8, 8, 8, 8, 8]));
    await rotating.close();
    await store.close();
  });

  it('keeps small attachments in the metadata store and reads them back', async () => {
    const metadata = memoryMetadata();
    const blobs = memoryBlobs();
    const store = createAttachmentStore({ metadata, blobs, inlineBlobMaxBytes: 64 * 1024, sweepIntervalSeconds: 0 });
    const [small] = await store.createDocuments([{ name: 'a.txt', body: new TextEncoder().encode('hello') }]);
    const [large] = await store.createDocuments([{ name: 'b.bin', body: new Uint8Array(100_000).fill(3) }]);
    expect(await innerPaths(blobs)).toHaveLength(1);
    expect(await inlinePaths(metadata)).toHaveLength(1);
    expect(new TextDecoder().decode(await readBytes((await store.openAttachment({ id: small!.id })).body))).toBe('hello');
    const range = await store.openAttachment({ id: small!.id }, { range: { start: 1, end: 3 } });
    expect(new TextDecoder().decode(await readBytes(range.body))).toBe('ell');
    expect((await readBytes((await store.openAttachment({ id: large!.id })).body)).byteLength).toBe(100_000);
    await store.close();
  });

  it('still reads blobs kept inline after the threshold is lowered to 0, and writes new ones to the blob store', async () => {
    const metadata = memoryMetadata();
    const blobs = memoryBlobs();
    const before = createAttachmentStore({ metadata, blobs, inlineBlobMaxBytes: 1024 });
    const [kept] = await before.createDocuments([{ name: 'a.txt', body: new TextEncoder().encode('kept inline') }]);
    await before.settled();
    const after = createAttachmentStore({ metadata, blobs, inlineBlobMaxBytes: 0 });
    expect(new TextDecoder().decode(await readBytes((await after.openAttachment({ id: kept!.id })).body))).toBe('kept inline');
    await after.createDocuments([{ name: 'b.txt', body: new TextEncoder().encode('to the blob store') }, { name: 'empty', body: new Uint8Array(0) }]);
    await after.settled();
    expect(await inlinePaths(metadata)).toHaveLength(1);
    expect(await innerPaths(blobs)).toHaveLength(2);
    await after.close();
  });

  it('refuses a threshold it cannot honour', () => {
    const blobs = memoryBlobs();
    expect(() => createAttachmentStore({ metadata: memoryMetadata(), blobs, inlineBlobMaxBytes: 2 * 1024 * 1024 })).toThrow(/at most|from 0 to/);
    expect(() => createAttachmentStore({ metadata: memoryMetadata(), blobs, inlineBlobMaxBytes: -1 })).toThrow(TypeError);
    const { holdsBlobData: _, ...withoutBlobData } = memoryMetadata();
    expect(() => createAttachmentStore({ metadata: withoutBlobData, blobs, inlineBlobMaxBytes: 10 })).toThrow(/holds blob data/);
  });
});

describe('commits of small attachments kept inline', () => {
  const scope = { namespace: 'default', key: 'k' };

  function fixture() {
    const metadata = memoryMetadata();
    const blobs = memoryBlobs();
    const reached: CrashPoint[] = [];
    const store = createAttachmentStore({ metadata, blobs, inlineBlobMaxBytes: MAX, onCrashPoint: (point) => reached.push(point) });
    /** Stages `text` as a.txt (through attachAll, so the blob goes to the staged path), then releases. */
    const write = async (text: string, rollback = false) => {
      const lease = await store.acquire({ key: scope.key, ttlSeconds: 30, owner: 'o' });
      await lease.attachAll(asIterable({ name: 'a.txt', body: new TextEncoder().encode(text) }));
      const staged = await inlinePaths(metadata);
      await lease.release({ rollback });
      return staged;
    };
    // Read right after the release, before any background work could run: none was queued.
    const state = () =>
      metadata.transaction(async (tx) => ({
        row: await tx.findByName(scope, 'a.txt', null),
        unpromoted: await tx.listUnpromoted(10),
        garbage: await tx.listGarbage(10),
      }));
    return { metadata, blobs, reached, store, write, state };
  }

  it('moves the staged blob to its committed path in the commit transaction: nothing is left to promote', async () => {
    const { metadata, blobs, reached, store, write, state } = fixture();
    const staged = await write('first');
    expect(staged).toHaveLength(1);
    expect(isStagedPath(staged[0]!)).toBe(true);
    const { row, unpromoted, garbage } = await state();
    expect(row?.blobPath).toBe(committedBlobPath(scope.namespace, scope.key, row!.versionId));
    expect(await inlinePaths(metadata)).toEqual([row!.blobPath]);
    expect({ unpromoted, garbage }).toEqual({ unpromoted: [], garbage: [] });
    expect(reached).toEqual(['upload.after-blob', 'upload.after-row', 'commit.after-metadata']);
    expect(new TextDecoder().decode(await readBytes((await store.openAttachment({ ...scope, name: 'a.txt' })).body))).toBe('first');
    expect(await innerPaths(blobs)).toEqual([]);
    await store.close();
  });

  it('drops the blob a commit replaced, and a rolled-back staged blob, in that same transaction: nothing is queued', async () => {
    const { metadata, reached, store, write, state } = fixture();
    await write('first');
    await write('second');
    const { row, garbage } = await state();
    expect(await inlinePaths(metadata)).toEqual([row!.blobPath]);
    expect(garbage).toEqual([]);
    await write('never', true);
    expect(await inlinePaths(metadata)).toEqual([row!.blobPath]);
    expect((await state()).garbage).toEqual([]);
    expect(reached.filter((point) => point.startsWith('promote') || point.startsWith('gc'))).toEqual([]);
    expect(new TextDecoder().decode(await readBytes((await store.openAttachment({ ...scope, name: 'a.txt' })).body))).toBe('second');
    await store.close();
  });

  it('still promotes a staged blob too large to be kept inline, in the background', async () => {
    const { blobs, reached, store } = fixture();
    const lease = await store.acquire({ key: scope.key, ttlSeconds: 30, owner: 'o' });
    await lease.attachAll(asIterable({ name: 'big.bin', body: new Uint8Array(MAX + 1).fill(1) }));
    await lease.release();
    await store.settled();
    expect(reached).toContain('promote.after-row');
    const paths = await innerPaths(blobs);
    expect(paths).toHaveLength(1);
    expect(isStagedPath(paths[0]!)).toBe(false);
    await store.close();
  });
});
