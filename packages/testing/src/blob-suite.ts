// The `BlobStore` port, specified as a vitest suite. Every implementation
// (memory, fs, s3, …) runs it: `describeBlobStore('fsBlobs', () => fsBlobs({ root }))`.
import type { BlobInfo, BlobStore } from '@attache/core';
import { beforeEach, describe, expect, it } from 'vitest';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Deterministic bytes that differ between 64 KiB chunks, so reordering or loss shows. */
export function patternByte(offset: number): number {
  return (offset * 7 + (offset >>> 8) * 3 + (offset >>> 16) * 11) & 0xff;
}

/**
 * A pull stream producing `totalBytes` of `patternByte`, `chunkBytes` per
 * chunk. With `recycle: n` its chunks are a ring of n buffers filled again
 * in turn (written once up front, so their pages are resident from the
 * start): for memory tests that must not count the source's own garbage.
 * The ring must outnumber what the consumer holds at once; a chunk reused
 * too early changes the bytes it stores, which a content check catches.
 */
export function patternStream(totalBytes: number, chunkBytes = 64 * KiB, options: { recycle?: number } = {}): ReadableStream<Uint8Array> {
  const ring = options.recycle === undefined ? undefined : Array.from({ length: options.recycle }, () => new Uint8Array(chunkBytes).fill(1));
  let offset = 0;
  let pulls = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (offset >= totalBytes) {
          controller.close();
          return;
        }
        const length = Math.min(chunkBytes, totalBytes - offset);
        const chunk = ring ? ring[pulls++ % ring.length]!.subarray(0, length) : new Uint8Array(length);
        for (let i = 0; i < chunk.length; i++) chunk[i] = patternByte(offset + i);
        offset += chunk.length;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Index of the first byte of `bytes` that is not `patternByte(firstOffset + index)`, or -1. */
export function firstPatternMismatch(bytes: Uint8Array, firstOffset = 0): number {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== patternByte(firstOffset + i)) return i;
  return -1;
}

export function bytesStream(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const queue = chunks.map((chunk) => (typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk));
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = queue.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(next);
    },
  });
}

export async function readBytes(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

async function readText(stream: ReadableStream<Uint8Array> | undefined): Promise<string | undefined> {
  return stream === undefined ? undefined : new TextDecoder().decode(await readBytes(stream));
}

/** Yields `chunks` chunks of 1 KiB, then errors with `failure`. */
function failingStream(failure: unknown, chunks = 3): ReadableStream<Uint8Array> {
  let produced = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced++ < chunks) controller.enqueue(new Uint8Array(KiB).fill(0x61));
      else controller.error(failure);
    },
  });
}

/**
 * Yields `chunks` chunks, then waits forever: a client that stalls mid-upload.
 * `pulled` resolves once those chunks were consumed; `cancelled` with the cancel reason.
 */
function stallingStream(chunks = 2): {
  stream: ReadableStream<Uint8Array>;
  pulled: Promise<void>;
  cancelled: Promise<unknown>;
} {
  let produced = 0;
  let onPulled!: () => void;
  let onCancelled!: (reason: unknown) => void;
  const pulled = new Promise<void>((resolve) => (onPulled = resolve));
  const cancelled = new Promise<unknown>((resolve) => (onCancelled = resolve));
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (produced++ < chunks) controller.enqueue(new Uint8Array(KiB).fill(0x62));
        else {
          onPulled();
          return new Promise<void>(() => {});
        }
      },
      cancel(reason) {
        onCancelled(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled, cancelled };
}

async function listPaths(store: BlobStore, prefix: string): Promise<string[]> {
  const paths: string[] = [];
  for await (const info of store.list(prefix)) paths.push(info.path);
  return paths.sort();
}

async function listAll(store: BlobStore, prefix: string): Promise<BlobInfo[]> {
  const infos: BlobInfo[] = [];
  for await (const info of store.list(prefix)) infos.push(info);
  return infos.sort((a, b) => a.path.localeCompare(b.path));
}

export function describeBlobStore(name: string, create: () => Promise<BlobStore> | BlobStore): void {
  describe(`BlobStore: ${name}`, () => {
    let store: BlobStore;
    const path = 'state/default/orders/42/attachments/0190a8f2-0000-7000-8000-000000000001';

    beforeEach(async () => {
      store = await create();
      return async () => {
        await store.close?.();
      };
    });

    describe('put', () => {
      it('stores the bytes, readable back with get', async () => {
        await expect(store.put(path, bytesStream('hello ', 'world'))).resolves.toEqual({ size: 11 });
        expect(await readText(await store.get(path))).toBe('hello world');
      });

      it('streams a 5 MiB body of 64 KiB chunks intact', async () => {
        const size = 5 * MiB;
        await expect(store.put(path, patternStream(size))).resolves.toEqual({ size });
        const bytes = await readBytes((await store.get(path))!);
        expect(bytes.length).toBe(size);
        expect(firstPatternMismatch(bytes)).toBe(-1);
      });

      it('stores an empty body', async () => {
        await expect(store.put(path, bytesStream())).resolves.toEqual({ size: 0 });
        const body = await store.get(path);
        expect(body).toBeDefined();
        expect((await readBytes(body!)).length).toBe(0);
        expect((await store.stat(path))?.size).toBe(0);
      });

      it('replaces a blob already at the path', async () => {
        await store.put(path, bytesStream('first version'));
        await expect(store.put(path, bytesStream('second'))).resolves.toEqual({ size: 6 });
        expect(await readText(await store.get(path))).toBe('second');
        expect((await store.stat(path))?.size).toBe(6);
      });

      it('keeps its own copy of the bytes: mutating a chunk after put changes nothing', async () => {
        const chunk = new TextEncoder().encode('original');
        await store.put(path, bytesStream(chunk));
        chunk.fill(0x7a);
        expect(await readText(await store.get(path))).toBe('original');
      });

      it('rejects with the exact error the stream failed with', async () => {
        const failure = new Error('client went away');
        await expect(store.put(path, failingStream(failure))).rejects.toBe(failure);
      });

      it('leaves nothing at the path when the stream errors', async () => {
        await expect(store.put(path, failingStream(new Error('boom')))).rejects.toThrow('boom');
        expect(await store.get(path)).toBeUndefined();
        expect(await store.stat(path)).toBeUndefined();
        expect(await listPaths(store, '')).toEqual([]);
      });

      it('leaves the previous blob unchanged when the replacing stream errors', async () => {
        await store.put(path, bytesStream('previous'));
        await expect(store.put(path, failingStream(new Error('boom')))).rejects.toThrow('boom');
        expect(await readText(await store.get(path))).toBe('previous');
        expect((await store.stat(path))?.size).toBe(8);
      });

      it('rejects with the signal reason and leaves nothing when aborted mid-stream', async () => {
        const controller = new AbortController();
        const source = stallingStream();
        const putting = store.put(path, source.stream, { signal: controller.signal });
        await source.pulled;
        const reason = new Error('upload aborted');
        controller.abort(reason);
        await expect(putting).rejects.toBe(reason);
        expect(await store.get(path)).toBeUndefined();
        expect(await listPaths(store, '')).toEqual([]);
      });

      it('cancels the source stream when aborted', async () => {
        const controller = new AbortController();
        const source = stallingStream();
        const putting = store.put(path, source.stream, { signal: controller.signal });
        await source.pulled;
        const reason = new Error('stop');
        controller.abort(reason);
        await expect(putting).rejects.toBe(reason);
        await expect(source.cancelled).resolves.toBe(reason);
      });

      it('leaves the previous blob unchanged when aborted', async () => {
        await store.put(path, bytesStream('previous'));
        const controller = new AbortController();
        const source = stallingStream();
        const putting = store.put(path, source.stream, { signal: controller.signal });
        await source.pulled;
        controller.abort(new Error('stop'));
        await expect(putting).rejects.toThrow('stop');
        expect(await readText(await store.get(path))).toBe('previous');
      });

      it('rejects at once when the signal is already aborted', async () => {
        const reason = new Error('too late');
        await expect(store.put(path, bytesStream('x'), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
        expect(await store.get(path)).toBeUndefined();
      });

      it('publishes nothing while the stream is still flowing', async () => {
        await store.put(path, bytesStream('previous'));
        const controller = new AbortController();
        const source = stallingStream();
        const putting = store.put(path, source.stream, { signal: controller.signal });
        await source.pulled;
        expect(await readText(await store.get(path))).toBe('previous');
        expect(await listAll(store, '')).toMatchObject([{ path, size: 8 }]);
        controller.abort(new Error('stop'));
        await expect(putting).rejects.toThrow('stop');
      });

      it('rejects a stream of non-byte chunks and stores nothing', async () => {
        const strings = new ReadableStream<unknown>({
          start(controller) {
            controller.enqueue('not bytes');
            controller.close();
          },
        }) as ReadableStream<Uint8Array>; // deliberately wrong chunk type
        await expect(store.put(path, strings)).rejects.toThrow(TypeError);
        expect(await store.get(path)).toBeUndefined();
      });

      it('leaves one complete blob when two puts race on a path', async () => {
        const size = 256 * KiB;
        const filled = (byte: number) => {
          let left = size;
          return new ReadableStream<Uint8Array>({
            pull(controller) {
              if (left === 0) return controller.close();
              const chunk = new Uint8Array(Math.min(16 * KiB, left)).fill(byte);
              left -= chunk.length;
              controller.enqueue(chunk);
            },
          });
        };
        await Promise.all([store.put(path, filled(0x61)), store.put(path, filled(0x62))]);
        const bytes = await readBytes((await store.get(path))!);
        expect(bytes.length).toBe(size);
        expect(bytes.every((byte) => byte === bytes[0])).toBe(true);
      });
    });

    describe('get', () => {
      it('resolves undefined for a missing blob', async () => {
        expect(await store.get('state/default/nothing/here')).toBeUndefined();
      });

      it('keeps streaming the old bytes when the blob is replaced mid-read', async () => {
        await store.put(path, patternStream(MiB));
        const body = (await store.get(path))!;
        await store.put(path, bytesStream('replacement'));
        const bytes = await readBytes(body);
        expect(bytes.length).toBe(MiB);
        expect(firstPatternMismatch(bytes)).toBe(-1);
      });

      it('can be cancelled mid-way, and the blob stays readable', async () => {
        await store.put(path, patternStream(5 * MiB));
        const reader = (await store.get(path))!.getReader();
        const first = await reader.read();
        expect(first.done).toBe(false);
        expect(first.value!.length).toBeGreaterThan(0);
        await reader.cancel();
        expect(await reader.read()).toEqual({ done: true, value: undefined });
        const again = await readBytes((await store.get(path))!);
        expect(again.length).toBe(5 * MiB);
        await store.delete(path);
        expect(await store.get(path)).toBeUndefined();
      });
    });

    describe('get with a range', () => {
      const size = 200 * KiB; // spans several 64 KiB chunks
      beforeEach(async () => {
        await store.put(path, patternStream(size));
      });

      async function readRange(start: number, end: number): Promise<Uint8Array> {
        return readBytes((await store.get(path, { start, end }))!);
      }

      it('returns only the first byte for 0-0', async () => {
        const bytes = await readRange(0, 0);
        expect([...bytes]).toEqual([patternByte(0)]);
      });

      it('returns only the last byte for (size-1)-(size-1)', async () => {
        const bytes = await readRange(size - 1, size - 1);
        expect([...bytes]).toEqual([patternByte(size - 1)]);
      });

      it('returns the inclusive middle range across chunk boundaries', async () => {
        const bytes = await readRange(1000, 140_000);
        expect(bytes.length).toBe(139_001);
        expect(firstPatternMismatch(bytes, 1000)).toBe(-1);
      });

      it('returns everything from start to the end', async () => {
        const bytes = await readRange(70_000, size - 1);
        expect(bytes.length).toBe(size - 70_000);
        expect(firstPatternMismatch(bytes, 70_000)).toBe(-1);
      });

      it('stops at the last byte when the range ends beyond the blob', async () => {
        const bytes = await readRange(size - 10, size + 1000);
        expect(bytes.length).toBe(10);
        expect(firstPatternMismatch(bytes, size - 10)).toBe(-1);
      });

      it('rejects a range whose end precedes its start', async () => {
        await expect(store.get(path, { start: 10, end: 9 })).rejects.toThrow(RangeError);
      });

      it('rejects a negative start', async () => {
        await expect(store.get(path, { start: -1, end: 9 })).rejects.toThrow(RangeError);
      });
    });

    describe('stat', () => {
      it('reports the path and size of a blob', async () => {
        await store.put(path, bytesStream('12345'));
        const info = await store.stat(path);
        expect(info).toMatchObject({ path, size: 5 });
        if (info?.modifiedAt !== undefined) {
          expect(Math.abs(info.modifiedAt - Date.now())).toBeLessThan(60_000);
        }
      });

      it('resolves undefined for a missing blob', async () => {
        expect(await store.stat(path)).toBeUndefined();
      });

      it('resolves undefined for a path that is only a prefix of blobs', async () => {
        await store.put(path, bytesStream('x'));
        expect(await store.stat('state/default/orders')).toBeUndefined();
        expect(await store.get('state/default/orders')).toBeUndefined();
      });
    });

    describe('copy', () => {
      const target = 'state/default/orders/42/attachments/copied';

      it('makes the target hold the bytes of the source, which stays', async () => {
        await store.put(path, bytesStream('payload'));
        await store.copy(path, target);
        expect(await readText(await store.get(target))).toBe('payload');
        expect(await readText(await store.get(path))).toBe('payload');
        expect((await store.stat(target))?.size).toBe(7);
      });

      it('keeps the target when the source is deleted afterwards', async () => {
        await store.put(path, bytesStream('payload'));
        await store.copy(path, target);
        await store.delete(path);
        expect(await store.get(path)).toBeUndefined();
        expect(await readText(await store.get(target))).toBe('payload');
      });

      it('keeps the target unchanged when the source is replaced afterwards', async () => {
        await store.put(path, bytesStream('payload'));
        await store.copy(path, target);
        await store.put(path, bytesStream('new source'));
        expect(await readText(await store.get(target))).toBe('payload');
      });

      it('is idempotent: copying again gives the same result', async () => {
        await store.put(path, bytesStream('payload'));
        await store.copy(path, target);
        await store.copy(path, target);
        expect(await readText(await store.get(target))).toBe('payload');
        expect(await listPaths(store, '')).toEqual([target, path].sort());
      });

      it('replaces an existing target', async () => {
        await store.put(target, bytesStream('stale target bytes'));
        await store.put(path, bytesStream('payload'));
        await store.copy(path, target);
        expect(await readText(await store.get(target))).toBe('payload');
      });

      it('rejects with not_found when the source does not exist', async () => {
        await expect(store.copy(path, target)).rejects.toMatchObject({ code: 'not_found' });
        expect(await store.get(target)).toBeUndefined();
      });
    });

    describe('delete', () => {
      it('removes the blob', async () => {
        await store.put(path, bytesStream('x'));
        await store.delete(path);
        expect(await store.get(path)).toBeUndefined();
        expect(await store.stat(path)).toBeUndefined();
        expect(await listPaths(store, '')).toEqual([]);
      });

      it('accepts a missing blob', async () => {
        await expect(store.delete(path)).resolves.toBeUndefined();
        await expect(store.delete('never/was/here')).resolves.toBeUndefined();
      });

      it('leaves sibling blobs alone', async () => {
        await store.put('a/b/one', bytesStream('1'));
        await store.put('a/b/two', bytesStream('2'));
        await store.delete('a/b/one');
        expect(await readText(await store.get('a/b/two'))).toBe('2');
      });

      it('allows a new put at the path afterwards', async () => {
        await store.put(path, bytesStream('x'));
        await store.delete(path);
        await store.put(path, bytesStream('again'));
        expect(await readText(await store.get(path))).toBe('again');
      });
    });

    describe('list', () => {
      beforeEach(async () => {
        await store.put('state/ns/k1/attachments/a', bytesStream('aa'));
        await store.put('state/ns/k1/.staging/t1/attachments/b', bytesStream('bbb'));
        await store.put('state/ns/k10/attachments/c', bytesStream('c'));
        await store.put('state/ns/k2/attachments/d', bytesStream(''));
        await store.put('top', bytesStream('t'));
      });

      it('lists every blob for the empty prefix, with sizes', async () => {
        expect(await listAll(store, '')).toMatchObject([
          { path: 'state/ns/k1/.staging/t1/attachments/b', size: 3 },
          { path: 'state/ns/k1/attachments/a', size: 2 },
          { path: 'state/ns/k10/attachments/c', size: 1 },
          { path: 'state/ns/k2/attachments/d', size: 0 },
          { path: 'top', size: 1 },
        ]);
      });

      it('lists nested blobs below a directory prefix', async () => {
        expect(await listPaths(store, 'state/ns/k1/')).toEqual([
          'state/ns/k1/.staging/t1/attachments/b',
          'state/ns/k1/attachments/a',
        ]);
        expect(await listPaths(store, 'state/ns/k1/.staging/')).toEqual(['state/ns/k1/.staging/t1/attachments/b']);
      });

      it('matches the prefix as a string, not only whole segments', async () => {
        expect(await listPaths(store, 'state/ns/k1')).toEqual([
          'state/ns/k1/.staging/t1/attachments/b',
          'state/ns/k1/attachments/a',
          'state/ns/k10/attachments/c',
        ]);
        expect(await listPaths(store, 'to')).toEqual(['top']);
      });

      it('matches a full blob path exactly', async () => {
        expect(await listPaths(store, 'state/ns/k2/attachments/d')).toEqual(['state/ns/k2/attachments/d']);
      });

      it('yields nothing for a prefix that matches no blob', async () => {
        expect(await listPaths(store, 'state/other/')).toEqual([]);
        expect(await listPaths(store, 'state/ns/k3')).toEqual([]);
        expect(await listPaths(store, 'zzz')).toEqual([]);
      });

      it('no longer lists deleted blobs', async () => {
        await store.delete('state/ns/k1/attachments/a');
        expect(await listPaths(store, 'state/ns/k1/')).toEqual(['state/ns/k1/.staging/t1/attachments/b']);
      });
    });

    describe('paths', () => {
      const malformed = ['', '/abs/olute', 'a//b', 'a/', 'a/./b', 'a/../b', '..', 'a\\b', 'a\0b'];

      it.each(malformed)('rejects the malformed path %j with invalid_key', async (bad) => {
        await expect(store.put(bad, bytesStream('x'))).rejects.toMatchObject({ code: 'invalid_key' });
        await expect(store.get(bad)).rejects.toMatchObject({ code: 'invalid_key' });
        await expect(store.stat(bad)).rejects.toMatchObject({ code: 'invalid_key' });
        await expect(store.delete(bad)).rejects.toMatchObject({ code: 'invalid_key' });
        await expect(store.copy(bad, 'ok/path')).rejects.toMatchObject({ code: 'invalid_key' });
        await expect(store.copy('ok/path', bad)).rejects.toMatchObject({ code: 'invalid_key' });
      });
    });
  });
}
