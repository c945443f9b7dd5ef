// Memory stays bounded whatever the object size: a 1 GiB upload and download
// through s3Blobs with default settings (8 MiB parts, 3 in flight).
// S3 is the run's radosgw, in processes of its own, so this process's RSS is
// the store's alone.
import { createHash } from 'node:crypto';
import type { BlobStore } from '@attache/core';
import { describeRadosgw, patternStream, rssGrowthBound } from '@attache/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { s3Blobs } from '../src/index.js';

const MiB = 1024 * 1024;
const size = 1024 * MiB;
// The part pool is partSize × (queueSize + 1) = 32 MiB, reused for the whole
// upload; the rest is the SDK's requests and garbage not yet collected. The
// issue's bound (64 MiB for 1 GiB) fails at once if a put ever buffers more
// than a few parts. (On Node 22+ the bound is 1.5× that: see rssGrowthBound.)
// The server-level figure, with Node's socket buffers, is the bench's.
const limit = rssGrowthBound(64 * MiB);

let store: BlobStore;

/** Runs `work` while sampling this process's RSS; returns the peak growth over the RSS before it started. */
async function peakRssGrowth(work: () => Promise<void>): Promise<{ growth: number; seconds: number }> {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  const started = performance.now();
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  return { growth: peak - baseline, seconds: (performance.now() - started) / 1000 };
}

// The upload's source recycles its chunks: with a fresh 1 MiB chunk per
// pull, up to 45 MiB of consumed chunks were still uncollected at the peak
// (V8 collects them lazily, later under load), and a busy CI host measured
// 78 MiB against a 32 MiB part pool. A ring of 16 outnumbers what the store
// may hold (one part's worth before the upload starts) plus the pipe; a ring
// of one fails the hash comparison below.
const source = (totalBytes: number) => patternStream(totalBytes, MiB, { recycle: 16 });

const figure = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

describeRadosgw('s3Blobs memory', (s3) => {
  beforeAll(() => {
    store = s3Blobs({
      bucket: s3.bucket,
      prefix: `memory-${Date.now().toString(36)}/`,
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: s3.credentials,
      forcePathStyle: true,
    });
  });

  afterAll(async () => {
    // The memstore OSD holds objects in RAM: give it back.
    await store?.delete('big');
    await store?.close?.();
  });

  it(`uploads and downloads ${size / MiB} MiB with RSS growth below ${limit / MiB} MiB`, { timeout: 240_000 }, async () => {
    // Warm up as a server that has taken an upload before: the SDK's code
    // loaded, V8's young generation grown to what a stream at this rate needs
    // (about 30 MiB of heap on Node 20, whatever the size) and the part
    // pool's memory, freed, kept by the allocator. What is measured below is
    // then what a 1 GiB upload adds over a 128 MiB one: it would be most of
    // a gigabyte if a put held its body, tens of MiB if it kept its parts.
    await store.put('warm-up', source(128 * MiB));
    await store.delete('warm-up');

    const uploadHash = createHash('sha256');
    const body = source(size).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          uploadHash.update(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
    const upload = await peakRssGrowth(async () => {
      await expect(store.put('big', body)).resolves.toEqual({ size });
    });

    const downloadHash = createHash('sha256');
    let downloaded = 0;
    const download = await peakRssGrowth(async () => {
      const reader = (await store.get('big'))!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        downloadHash.update(value);
        downloaded += value.byteLength;
      }
    });

    console.log(
      `s3Blobs ${size / MiB} MiB: upload RSS growth ${figure(upload.growth)}, ` +
        `${(size / MiB / upload.seconds).toFixed(0)} MiB/s; download RSS growth ${figure(download.growth)}, ` +
        `${(size / MiB / download.seconds).toFixed(0)} MiB/s`,
    );
    expect(downloaded).toBe(size);
    expect(downloadHash.digest('hex')).toBe(uploadHash.digest('hex'));
    expect(upload.growth).toBeLessThan(limit);
    expect(download.growth).toBeLessThan(limit);
  });
});
