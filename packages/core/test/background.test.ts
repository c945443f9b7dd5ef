// Promotion and garbage deletion run after the answer (commit.ts steps 4–7,
// background.ts): a release is answered once its metadata commit is durable.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createAttachmentStore,
  memoryBlobs,
  memoryMetadata,
  stagedTxnOf,
  type AttachmentStore,
  type BlobStore,
} from '../src/index.js';
import { asIterable } from './as-iterable.js';
import { backgroundWork } from '../src/background.js';

const bytes = (text: string) => new TextEncoder().encode(text);


async function readText(body: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(body).text();
}

async function paths(blobs: BlobStore): Promise<string[]> {
  const found: string[] = [];
  for await (const blob of blobs.list('state/')) found.push(blob.path);
  return found.sort();
}

/**
 * Blobs over `inner` whose `copy` (promotion's first step) waits until
 * `open()` is called: before copying, or (`holdAfterCopy`) after it.
 */
function gatedBlobs(
  inner: BlobStore = memoryBlobs(),
  holdAfterCopy = false,
): { blobs: BlobStore; copies: () => number; open: () => void; failNextCopy: () => void } {
  let opened!: () => void;
  const gate = new Promise<void>((resolve) => (opened = resolve));
  let copies = 0;
  let fail = false;
  const blobs: BlobStore = {
    ...inner,
    async copy(from, to) {
      copies += 1;
      if (holdAfterCopy) await inner.copy(from, to);
      await gate;
      if (fail) {
        fail = false;
        throw new Error('disk on fire');
      }
      if (!holdAfterCopy) await inner.copy(from, to);
    },
  };
  return { blobs, copies: () => copies, open: () => opened(), failNextCopy: () => (fail = true) };
}

let stores: AttachmentStore[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(stores.map((store) => store.close()));
  stores = [];
});

describe('release', () => {
  it('answers before promotion, and readers get the committed bytes through the staged blob meanwhile', async () => {
    const gated = gatedBlobs();
    const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: gated.blobs });
    stores.push(store);
    const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
    await lease.attachAll(asIterable({ name: 'a.txt', body: bytes('hello') }));
    await expect(lease.release()).resolves.toEqual({ released: true });
    // The release answered while promotion is still held at its copy.
    expect(gated.copies()).toBe(1);
    expect((await paths(gated.blobs)).map((path) => stagedTxnOf(path) !== undefined)).toEqual([true]);
    expect(await readText((await store.openAttachment({ key: 'k', name: 'a.txt' })).body)).toBe('hello');

    gated.open();
    await store.settled();
    expect(await paths(gated.blobs)).toEqual([expect.stringMatching(/^state\/default\/k\/attachments\/[0-9a-f-]{36}$/)]);
    expect(await readText((await store.openAttachment({ key: 'k', name: 'a.txt' })).body)).toBe('hello');
  });

  it('logs a failed promotion instead of failing the release; the next sweep promotes', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const gated = gatedBlobs();
    const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: gated.blobs });
    stores.push(store);
    const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
    await lease.attachAll(asIterable({ name: 'a.txt', body: bytes('hello') }));
    gated.failNextCopy();
    await expect(lease.release()).resolves.toEqual({ released: true });
    gated.open();
    await store.settled();
    expect(errors).toHaveBeenCalledWith(expect.stringContaining('the sweeper will retry'), expect.any(Error));
    expect((await paths(gated.blobs)).every((path) => stagedTxnOf(path) !== undefined)).toBe(true);

    expect((await store.sweep()).promoted).toBe(1);
    expect(await paths(gated.blobs)).toEqual([expect.stringMatching(/^state\/default\/k\/attachments\//)]);
    expect(await readText((await store.openAttachment({ key: 'k', name: 'a.txt' })).body)).toBe('hello');
  });

  for (const holdAfterCopy of [false, true]) {
    it(`keeps the committed blob when another instance's sweeper promotes the same row while this one is ${holdAfterCopy ? 'between copy and repoint' : 'about to copy'}`, async () => {
      const errors = vi.spyOn(console, 'error');
      const metadata = memoryMetadata();
      const shared = memoryBlobs();
      const gated = gatedBlobs(shared, holdAfterCopy);
      const releasing = createAttachmentStore({ metadata, blobs: gated.blobs });
      const sweeping = createAttachmentStore({ metadata, blobs: shared, orphanGraceSeconds: 0 });
      stores.push(releasing, sweeping);
      const lease = await releasing.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
      await lease.attachAll(asIterable({ name: 'a.txt', body: bytes('hello') }));
      await lease.release();
      await vi.waitFor(() => expect(gated.copies()).toBe(1));
      expect((await sweeping.sweep()).promoted).toBe(1);
      gated.open();
      await releasing.settled();
      expect(await paths(shared)).toEqual([expect.stringMatching(/^state\/default\/k\/attachments\//)]);
      expect(await readText((await sweeping.openAttachment({ key: 'k', name: 'a.txt' })).body)).toBe('hello');
      expect(await sweeping.sweep()).toMatchObject({ promoted: 0, orphansDeleted: 0 });
      // Losing the race is not a failure worth a log line.
      expect(errors).not.toHaveBeenCalled();
    });
  }
});

describe('close', () => {
  it('waits for promotions in flight', async () => {
    const gated = gatedBlobs();
    const metadata = memoryMetadata();
    const store = createAttachmentStore({ metadata, blobs: gated.blobs });
    const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
    await lease.attachAll(asIterable({ name: 'a.txt', body: bytes('hello') }));
    await lease.release();
    let closed = false;
    const closing = store.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(false);
    gated.open();
    await closing;
    expect(await paths(gated.blobs)).toEqual([expect.stringMatching(/^state\/default\/k\/attachments\//)]);
  });
});

describe('background work', () => {
  it('runs at most its limit of tasks at once, and settles when all are done', async () => {
    const work = backgroundWork(2, () => {});
    let running = 0;
    let peak = 0;
    const finished: number[] = [];
    for (let i = 0; i < 6; i++) {
      work.run(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running -= 1;
        finished.push(i);
      });
    }
    await work.settled();
    expect(peak).toBe(2);
    expect(finished.sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('hands a failing task to onError and goes on with the next', async () => {
    const failures: unknown[] = [];
    const work = backgroundWork(1, (error) => failures.push(error));
    let ran = false;
    work.run(() => {
      throw new Error('sync failure');
    });
    work.run(async () => {
      ran = true;
    });
    await work.settled();
    expect(ran).toBe(true);
    expect(failures).toEqual([new Error('sync failure')]);
  });
});

describe('delete grace (BlobStore.deleteGraceSeconds)', () => {
  /** A store over blobs that ask for `graceSeconds`, on a clock the test moves; promotion waits for `open()`. */
  function graceStore(graceSeconds: number) {
    const gated = gatedBlobs({ ...memoryBlobs(), deleteGraceSeconds: graceSeconds });
    let now = Date.UTC(2026, 11, 6);
    const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: gated.blobs, now: () => now });
    stores.push(store);
    return { store, blobs: gated.blobs, open: gated.open, advance: (ms: number) => (now += ms) };
  }

  /** Commits each text in turn as a new version of k/a.txt. */
  async function commitVersions(store: AttachmentStore, texts: string[]): Promise<void> {
    for (const text of texts) {
      const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
      await lease.attach({ name: 'a.txt', body: bytes(text) });
      await lease.release();
    }
  }

  it('keeps a promoted staged blob, for reads streaming it, until a sweep after the grace', async () => {
    const { store, blobs, open, advance } = graceStore(60);
    const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
    await lease.attachAll(asIterable({ name: 'a.txt', body: bytes('hello') }));
    await lease.release();
    // A read that opened the staged blob before promotion.
    const reading = await store.openAttachment({ key: 'k', name: 'a.txt' });
    open();
    await store.settled();
    const committed = expect.stringMatching(/^state\/default\/k\/attachments\//);
    const staged = expect.stringMatching(/^state\/~staging\//);
    expect(await paths(blobs)).toEqual([committed, staged]);

    advance(59_000);
    expect((await store.sweep()).garbageDeleted).toBe(0);
    expect(await paths(blobs)).toEqual([committed, staged]);
    expect(await readText(reading.body)).toBe('hello');

    advance(2_000);
    expect((await store.sweep()).garbageDeleted).toBe(1);
    expect(await paths(blobs)).toEqual([committed]);
    expect(await readText((await store.openAttachment({ key: 'k', name: 'a.txt' })).body)).toBe('hello');
  });

  it('keeps a replaced version’s blob until the grace has passed', async () => {
    const { store, blobs, open, advance } = graceStore(60);
    open();
    await commitVersions(store, ['one', 'two']);
    await store.settled();
    // Version one's blob and version two's (each written at its committed path).
    expect(await paths(blobs)).toHaveLength(2);
    advance(61_000);
    await store.sweep();
    expect(await paths(blobs)).toHaveLength(1);
    expect(await readText((await store.openAttachment({ key: 'k', name: 'a.txt' })).body)).toBe('two');
  });

  it('without a grace, deletes promoted and replaced blobs as soon as the background work settles', async () => {
    const { store, blobs, open } = graceStore(0);
    open();
    await commitVersions(store, ['one', 'two']);
    await store.settled();
    expect(await paths(blobs)).toHaveLength(1);
  });
});
