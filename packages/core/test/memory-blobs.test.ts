// Core cannot depend on @attache/testing (which depends on core), so the
// shared suite is imported by relative path.
import { describe, expect, it } from 'vitest';
import { memoryBlobs } from '../src/memory/blobs.js';
import { bytesStream, describeBlobStore, readBytes } from '../../testing/src/blob-suite.js';

describeBlobStore('memoryBlobs', () => memoryBlobs());

describe('memoryBlobs', () => {
  it('keeps stores independent of each other', async () => {
    const first = memoryBlobs();
    const second = memoryBlobs();
    await first.put('a/b', bytesStream('x'));
    expect(await second.get('a/b')).toBeUndefined();
  });

  it('hands each reader its own copy of the bytes', async () => {
    const store = memoryBlobs();
    await store.put('a/b', bytesStream('bytes'));
    const first = await readBytes((await store.get('a/b'))!);
    first.fill(0);
    expect(new TextDecoder().decode(await readBytes((await store.get('a/b'))!))).toBe('bytes');
  });
});
