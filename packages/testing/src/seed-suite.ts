// The seed interface (`IAttachmentStore`, API.md §1) as one specification,
// run against every implementation: the in-process store on each engine
// stack (engine-suite.ts) and @attache/client over HTTP.
import type { IAttachmentStore } from '@attache/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectCode, readText } from './expectations.js';

export interface SeedStoreUnderTest {
  store: IAttachmentStore;
  /** Every blob the backing storage holds, to prove that a failed upload kept nothing. */
  blobPaths(): Promise<string[]>;
  close(): Promise<void>;
}

export interface SeedSuiteFixture {
  /** A fresh store over empty storage. */
  open(): Promise<SeedStoreUnderTest>;
  /**
   * Whether an explicit `extension` other than the file name's is stored (in
   * process). The HTTP API derives it from the name, so the client refuses
   * one it cannot send with `invalid_argument`.
   */
  explicitExtension: boolean;
}

const bytes = (text: string) => new TextEncoder().encode(text);

/** Polls until the storage is empty: a server removes a broken upload's bytes as the connection closes. */
async function expectNoBlobs(under: SeedStoreUnderTest): Promise<void> {
  const deadline = Date.now() + 3000;
  let paths = await under.blobPaths();
  while (paths.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    paths = await under.blobPaths();
  }
  expect(paths).toEqual([]);
}

export function describeSeedInterface(name: string, fixture: SeedSuiteFixture): void {
  describe('seed interface', () => {
    let under: SeedStoreUnderTest;
    let store: IAttachmentStore;
    beforeEach(async () => {
      under = await fixture.open();
      store = under.store;
    });
    afterEach(async () => {
      await under.close();
    });

    /** After a failed upload: its id is unknown to `stat`, and no bytes are left. */
    async function expectNotKept(handle: { attachmentId: string }): Promise<void> {
      await expectCode(store.stat(handle.attachmentId), 'attachment_not_found');
      await expectNoBlobs(under);
    }

    it('round-trips create → sink → done → stat → get', async () => {
      const handle = store.create({ mimeType: 'text/plain', fileName: 'Notes.TXT', sizeBytes: 11 });
      // Known as soon as create() returns, before a byte is written (API.md §1).
      const attachmentId = handle.attachmentId;
      expect(attachmentId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      await new Blob(['hello world']).stream().pipeTo(handle.sink);
      const { header, ref } = await handle.done;
      expect(handle.attachmentId).toBe(attachmentId);
      expect(ref).toBe(`attachment://${attachmentId}`);
      expect(header).toEqual({ attachmentId: handle.attachmentId, mimeType: 'text/plain', extension: 'txt', hash: '0d4a1185' });
      expect(await store.stat(handle.attachmentId)).toEqual(header);
      const response = await store.get(ref);
      expect(response.header).toEqual(header);
      expect(await readText(response.body)).toBe('hello world');
      const partial = await store.get(ref, { range: { start: 6 } });
      expect(await readText(partial.body)).toBe('world');
      const middle = await store.get(ref, { range: { start: 2, end: 4 } });
      expect(await readText(middle.body)).toBe('llo');
    });

    it('keeps nothing when the sink is aborted', async () => {
      const handle = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 100 });
      const writer = handle.sink.getWriter();
      const pending = writer.write(bytes('partial')).catch((e: unknown) => e);
      await writer.abort(new Error('changed my mind'));
      expect(await pending).toBeInstanceOf(Error);
      await expect(handle.done).rejects.toThrow('changed my mind');
      await expectNotKept(handle);
    });

    it('rejects done with size_mismatch when fewer or more bytes arrive', async () => {
      for (const text of ['short', 'much too long']) {
        const handle = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 8 });
        const piped = new Blob([text]).stream().pipeTo(handle.sink).catch(() => {});
        await expectCode(handle.done, 'size_mismatch');
        await piped;
        await expectNotKept(handle);
      }
    });

    it('rejects sink.close() and pipeTo with size_mismatch when fewer bytes arrive, as done does', async () => {
      const closed = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 8 });
      const writer = closed.sink.getWriter();
      await writer.write(bytes('short'));
      await expectCode(writer.close(), 'size_mismatch');
      await expectCode(closed.done, 'size_mismatch');

      const piped = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 8 });
      await expectCode(new Blob(['short']).stream().pipeTo(piped.sink), 'size_mismatch');
      await expectCode(piped.done, 'size_mismatch');
      await expectNotKept(piped);
    });

    it('resolves sink.close() only once the attachment is stored', async () => {
      const handle = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 5 });
      await new Blob(['hello']).stream().pipeTo(handle.sink);
      // No await on `done` first: a resolved close means stat sees it.
      expect((await store.stat(handle.attachmentId)).hash).toBe('3610a686');
      expect((await handle.done).ref).toBe(`attachment://${handle.attachmentId}`);
    });

    it('fails the first write past sizeBytes at once, without reading the rest of the source', async () => {
      const handle = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 4 });
      let pulled = 0;
      const endless = new ReadableStream<Uint8Array>(
        {
          pull(controller) {
            pulled += 1;
            controller.enqueue(bytes('ab'));
          },
        },
        { highWaterMark: 0 },
      );
      await expectCode(endless.pipeTo(handle.sink), 'size_mismatch');
      await expectCode(handle.done, 'size_mismatch');
      expect(pulled).toBeLessThanOrEqual(4);
      await expectNotKept(handle);
    });

    it('rejects the write that overflows sizeBytes with size_mismatch', async () => {
      const handle = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 4 });
      const writer = handle.sink.getWriter();
      await writer.write(bytes('abc'));
      await expectCode(writer.write(bytes('de')), 'size_mismatch');
      await expectCode(handle.done, 'size_mismatch');
    });

    it('derives the extension from the file name, or none', async () => {
      const derived = store.create({ mimeType: 'image/png', fileName: 'x.PNG', sizeBytes: 0 });
      await derived.sink.close();
      expect((await derived.done).header.extension).toBe('png');
      const none = store.create({ mimeType: 'image/png', fileName: 'x', sizeBytes: 0 });
      await none.sink.close();
      expect((await none.done).header.extension).toBeNull();
    });

    it(fixture.explicitExtension ? 'uses an explicit extension' : 'refuses an explicit extension other than the name’s with invalid_argument', async () => {
      const explicit = store.create({ mimeType: 'image/png', fileName: 'x', sizeBytes: 0, extension: 'png' });
      const closed = explicit.sink.close().catch((e: unknown) => e);
      if (fixture.explicitExtension) {
        expect((await explicit.done).header.extension).toBe('png');
      } else {
        await expectCode(explicit.done, 'invalid_argument');
        await closed;
      }
    });

    it('rejects bad refs and unknown ids', async () => {
      await expectCode(store.get('nope' as `attachment://${string}`), 'invalid_ref');
      await expectCode(store.get('attachment://'), 'invalid_ref');
      await expectCode(store.get('attachment://0190b6e0-0000-7000-8000-000000000000'), 'attachment_not_found');
      await expectCode(store.stat('0190b6e0-0000-7000-8000-000000000000'), 'attachment_not_found');
      await expectCode(store.stat('attachment://0190b6e0-0000-7000-8000-000000000000'), 'attachment_not_found');
      await expectCode(store.stat('attachment://'), 'invalid_ref');
      await expectCode(store.stat('attachment://a/b'), 'invalid_ref');
    });

    it('stats by the ref as well as by the bare id', async () => {
      const handle = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 1 });
      await new Blob(['a']).stream().pipeTo(handle.sink);
      const { header, ref } = await handle.done;
      expect(await store.stat(ref)).toEqual(header);
      expect(await store.stat(handle.attachmentId)).toEqual(header);
    });

    it('errors the body when the get signal aborts', async () => {
      const size = 4 * 1024 * 1024;
      const handle = store.create({ mimeType: 'application/octet-stream', fileName: 'big.bin', sizeBytes: size });
      await new Blob([new Uint8Array(size)]).stream().pipeTo(handle.sink);
      const { ref } = await handle.done;
      const controller = new AbortController();
      const response = await store.get(ref, undefined, controller.signal);
      const reader = response.body.getReader();
      await reader.read();
      controller.abort();
      await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' });
    });

    it('refuses to start a get with an already aborted signal', async () => {
      const handle = store.create({ mimeType: 'text/plain', fileName: 'a.txt', sizeBytes: 1 });
      await new Blob(['a']).stream().pipeTo(handle.sink);
      const { ref } = await handle.done;
      await expect(store.get(ref, undefined, AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
    });
  });
}
