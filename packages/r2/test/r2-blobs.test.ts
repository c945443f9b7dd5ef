// The shared BlobStore port suite on R2 as workerd simulates it: miniflare
// runs a bucket in workerd, and its Node-side proxy of the binding is the
// bucket the store is given (every call crosses into workerd over loopback).
import { createHash, randomBytes } from 'node:crypto';
import { describeBlobStore, patternStream } from '@attache/testing';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { r2Blobs, type R2BucketLike } from '../src/index.js';

let miniflare: Miniflare;
let bucket: R2BucketLike;

beforeAll(async () => {
  miniflare = new Miniflare({
    modules: true,
    script: 'export default { fetch() { return new Response(null, { status: 404 }); } };',
    compatibilityDate: '2026-04-01',
    r2Buckets: ['BUCKET'],
  });
  bucket = (await miniflare.getR2Bucket('BUCKET')) as unknown as R2BucketLike;
});

afterAll(async () => {
  await miniflare?.dispose();
});

// Each store its own prefix, so the suite's cases never see each other's blobs.
describeBlobStore('r2Blobs (miniflare)', () => r2Blobs({ bucket, prefix: `t-${randomBytes(6).toString('hex')}/` }));

describe('r2Blobs multipart upload', () => {
  const MiB = 1024 * 1024;
  const sha256Of = async (stream: ReadableStream<Uint8Array>) => {
    const hash = createHash('sha256');
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
    return hash.digest('hex');
  };

  it('round-trips 12 MiB in 5 MiB parts byte for byte, and copies it', async () => {
    const store = r2Blobs({ bucket, prefix: `mp-${randomBytes(6).toString('hex')}/`, partSize: 5 * MiB });
    const expected = await sha256Of(patternStream(12 * MiB));
    await expect(store.put('big/blob', patternStream(12 * MiB))).resolves.toEqual({ size: 12 * MiB });
    expect((await store.stat('big/blob'))?.size).toBe(12 * MiB);
    expect(await sha256Of((await store.get('big/blob'))!)).toBe(expected);
    await store.copy('big/blob', 'big/copy');
    expect(await sha256Of((await store.get('big/copy'))!)).toBe(expected);
  });

  it('keeps bytes in order when chunks of mixed sizes cross the first part boundary', async () => {
    const store = r2Blobs({ bucket, prefix: `mp-${randomBytes(6).toString('hex')}/`, partSize: 5 * MiB });
    const sizes = [3 * MiB, 3 * MiB, 1024, 1024, 2 * MiB, 7];
    const chunks = sizes.map((length, index) => new Uint8Array(length).fill(index + 1));
    const total = sizes.reduce((sum, length) => sum + length, 0);
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(next.slice());
      },
    });
    const expected = createHash('sha256');
    sizes.forEach((length, index) => expected.update(new Uint8Array(length).fill(index + 1)));
    await expect(store.put('mixed', source)).resolves.toEqual({ size: total });
    expect(await sha256Of((await store.get('mixed'))!)).toBe(expected.digest('hex'));
  });

  it('leaves no object when the source errors after two parts', async () => {
    const store = r2Blobs({ bucket, prefix: `mp-${randomBytes(6).toString('hex')}/`, partSize: 5 * MiB });
    const failure = new Error('client went away');
    const source = patternStream(11 * MiB).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        sent: 0,
        transform(chunk, controller) {
          this.sent += chunk.byteLength;
          if (this.sent > 10 * MiB + 1) throw failure;
          controller.enqueue(chunk);
        },
      } as Transformer<Uint8Array, Uint8Array> & { sent: number }),
    );
    await expect(store.put('big/blob', source)).rejects.toBe(failure);
    expect(await store.stat('big/blob')).toBeUndefined();
  });

  it('refuses a part size below R2’s minimum of 5 MiB', () => {
    expect(() => r2Blobs({ bucket, partSize: MiB })).toThrow(/at least 5 MiB/);
  });
});
