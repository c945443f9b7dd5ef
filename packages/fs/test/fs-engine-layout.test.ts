// What the engine's blob layout costs on a real file system: the directories
// an upload creates (each one needs an fsync of its parent to be durable).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAttachmentStore, type AttachmentStore } from '@attache/core';
import { asIterable } from '@attache/testing';
import { memoryMetadata } from '@attache/core/memory';
import { fsBlobs } from '../src/index.js';

const bytes = (text: string) => new TextEncoder().encode(text);

/** Every directory below `root`, relative to it. */
async function directories(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

let root: string;
let store: AttachmentStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'attache-fs-layout-'));
  store = createAttachmentStore({ metadata: memoryMetadata(), blobs: fsBlobs({ root }) });
});
afterEach(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

describe('staged uploads on the file system', () => {
  it('create no directory once the staging directory exists', async () => {
    const first = await store.acquire({ key: 'orders/1', ttlSeconds: 30, owner: 'o' });
    await first.attachAll(asIterable({ name: 'a.bin', body: bytes('first') }));
    const before = await directories(root);
    expect(before).toContain(join('state', '~staging'));

    const second = await store.acquire({ key: 'orders/2', ttlSeconds: 30, owner: 'o' });
    await second.attachAll(asIterable({ name: 'b.bin', body: bytes('second') }));
    await second.attachAll(asIterable({ name: 'c.bin', body: bytes('third') }));
    expect(await directories(root)).toEqual(before);
    await first.release({ rollback: true });
    await second.release({ rollback: true });
  });

  it('are not how documents are written: each goes straight to its committed path, no staging directory is made', async () => {
    const documents = await store.createDocuments([
      { name: 'a.txt', body: bytes('a') },
      { name: 'b.txt', body: bytes('b') },
    ]);
    await store.settled();
    expect(await readdir(join(root, 'state'))).toEqual(['default']);
    const committed = await readdir(join(root, 'state', 'default'));
    expect(committed.sort()).toEqual(documents.map((document) => document.id).sort());
  });
});
