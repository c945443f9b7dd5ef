import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bytesStream, describeBlobStore, patternStream, readBytes } from '@attache/testing';
import { fsBlobs } from '../src/index.js';

const MiB = 1024 * 1024;
let sandbox: string;
let rootCounter = 0;

beforeAll(async () => {
  sandbox = await mkdtemp(join(tmpdir(), 'attache-fs-blobs-'));
});
afterAll(async () => {
  await rm(sandbox, { recursive: true, force: true });
});

async function newRoot(): Promise<string> {
  const root = join(sandbox, `root-${++rootCounter}`);
  await mkdir(root);
  return root;
}

describeBlobStore('fsBlobs', async () => fsBlobs({ root: await newRoot() }));

describeBlobStore('fsBlobs with a separate tempDir', async () => {
  const root = await newRoot();
  return fsBlobs({ root: join(root, 'blobs'), tempDir: join(root, 'staging-area') });
});

/** Open file descriptors of this process (Linux only). */
function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

function failingAfter(chunks: number, failure: Error): ReadableStream<Uint8Array> {
  let produced = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced++ < chunks) controller.enqueue(new Uint8Array(64 * 1024));
      else controller.error(failure);
    },
  });
}

describe('fsBlobs', () => {
  let root: string;
  let store: ReturnType<typeof fsBlobs>;
  const blobPath = 'state/default/orders/42/.staging/txn-1/attachments/0190a8f2-0000-7000-8000-000000000001';

  beforeEach(async () => {
    root = await newRoot();
    store = fsBlobs({ root });
  });

  describe('paths', () => {
    const escapes = ['../x', 'a/../../x', '/etc/passwd', 'a\\b', 'a//b', 'a\0b', '..\\..\\x', 'a/b/..'];

    it.each(escapes)('refuses %j before touching the file system', async (bad) => {
      await expect(store.put(bad, bytesStream('x'))).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.get(bad)).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.delete(bad)).rejects.toMatchObject({ code: 'invalid_key' });
      expect(await readdir(root)).toEqual([]);
      expect(existsSync(join(root, '..', 'x'))).toBe(false);
    });

    it('refuses paths into the temporary directory', async () => {
      await expect(store.put('.tmp/sneaky', bytesStream('x'))).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.get('.tmp/sneaky')).rejects.toMatchObject({ code: 'invalid_key' });
    });

    it('refuses list prefixes that would escape the root', async () => {
      const listing = async (prefix: string) => {
        for await (const _ of store.list(prefix)) void _;
      };
      await expect(listing('../')).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(listing('/etc/')).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(listing('a/../../')).rejects.toMatchObject({ code: 'invalid_key' });
    });

    it('stores a blob at the file named by its path below root', async () => {
      await store.put(blobPath, bytesStream('bytes'));
      expect((await stat(join(root, ...blobPath.split('/')))).size).toBe(5);
    });
  });

  describe('temp files', () => {
    const tempEntries = async () => (existsSync(join(root, '.tmp')) ? await readdir(join(root, '.tmp')) : []);

    it('leaves none after a successful put or copy', async () => {
      await store.put(blobPath, patternStream(MiB));
      await store.copy(blobPath, 'state/default/orders/42/attachments/copy');
      expect(await tempEntries()).toEqual([]);
    });

    it('leaves none when a copy is repeated onto its own earlier link (a retried promotion)', async () => {
      await store.put(blobPath, patternStream(MiB));
      await store.copy(blobPath, 'state/default/orders/42/attachments/copy');
      await store.copy(blobPath, 'state/default/orders/42/attachments/copy');
      expect(await tempEntries()).toEqual([]);
    });

    it('purgeTemporary removes leftovers older than the cutoff and keeps newer ones', async () => {
      await mkdir(join(root, '.tmp'), { recursive: true });
      await writeFile(join(root, '.tmp', 'old.part'), 'partial');
      await writeFile(join(root, '.tmp', 'new.part'), 'partial');
      const hourAgo = new Date(Date.now() - 3600_000);
      await utimes(join(root, '.tmp', 'old.part'), hourAgo, hourAgo);
      expect(await store.purgeTemporary!(Date.now() - 60_000)).toBe(1);
      expect(await tempEntries()).toEqual(['new.part']);
    });

    it('leaves none after a put whose stream errored', async () => {
      await expect(store.put(blobPath, failingAfter(4, new Error('boom')))).rejects.toThrow('boom');
      expect(await tempEntries()).toEqual([]);
    });

    it('leaves none after an aborted put', async () => {
      const controller = new AbortController();
      let produced = 0;
      const source = new ReadableStream<Uint8Array>({
        pull(streamController) {
          if (++produced === 3) controller.abort(new Error('stop'));
          streamController.enqueue(new Uint8Array(64 * 1024));
        },
      });
      await expect(store.put(blobPath, source, { signal: controller.signal })).rejects.toThrow('stop');
      expect(await tempEntries()).toEqual([]);
    });

    it('leaves none after a put that fails at rename (a directory sits at the path)', async () => {
      await store.put(`${blobPath}/child`, bytesStream('x'));
      await expect(store.put(blobPath, bytesStream('y'))).rejects.toThrow();
      expect(await tempEntries()).toEqual([]);
    });

    it('leaves none after a copy from a missing source', async () => {
      await expect(store.copy('missing/source', 'some/target')).rejects.toMatchObject({ code: 'not_found' });
      expect(await tempEntries()).toEqual([]);
    });

    it('are not listed', async () => {
      await mkdir(join(root, '.tmp'), { recursive: true });
      await writeFile(join(root, '.tmp', 'leftover.part'), 'partial');
      await store.put('a/b', bytesStream('x'));
      const paths: string[] = [];
      for await (const info of store.list('')) paths.push(info.path);
      expect(paths).toEqual(['a/b']);
    });
  });

  describe('get', () => {
    it('closes the file descriptor when the stream is cancelled', async () => {
      await store.put(blobPath, patternStream(5 * MiB));
      const before = openDescriptors();
      const reader = (await store.get(blobPath))!.getReader();
      await reader.read();
      // Proves the count sees our descriptor, so the final check can fail.
      expect(openDescriptors()).toBe(before + 1);
      await reader.cancel();
      expect(openDescriptors()).toBe(before);
    });

    it('closes the file descriptor when the stream is read to the end', async () => {
      await store.put(blobPath, patternStream(MiB));
      const before = openDescriptors();
      const bytes = await readBytes((await store.get(blobPath, { start: 10, end: 300_000 }))!);
      expect(bytes.length).toBe(299_991);
      expect(openDescriptors()).toBe(before);
    });

    it('resolves undefined when a path component is a file', async () => {
      await store.put('a/b', bytesStream('x'));
      expect(await store.get('a/b/c')).toBeUndefined();
      expect(await store.stat('a/b/c')).toBeUndefined();
    });
  });

  describe('delete', () => {
    it('removes parent directories left empty, down to the two levels below root', async () => {
      await store.put(blobPath, bytesStream('x'));
      await store.delete(blobPath);
      expect((await readdir(root)).sort()).toEqual(['.tmp', 'state']);
      expect(await readdir(join(root, 'state'))).toEqual(['default']);
      expect(await readdir(join(root, 'state', 'default'))).toEqual([]);
    });

    it('keeps the flat staging directory when its last blob goes, so the next upload creates none', async () => {
      await store.put('state/~staging/t1.v1', bytesStream('x'));
      await store.delete('state/~staging/t1.v1');
      expect(await readdir(join(root, 'state', '~staging'))).toEqual([]);
    });

    it('keeps parent directories that still hold other blobs', async () => {
      await store.put('state/ns/k/attachments/one', bytesStream('1'));
      await store.put('state/ns/k/.staging/t/attachments/two', bytesStream('2'));
      await store.delete('state/ns/k/.staging/t/attachments/two');
      expect(await readdir(join(root, 'state', 'ns', 'k'))).toEqual(['attachments']);
    });

    it('keeps root even when it becomes empty', async () => {
      await store.put('only', bytesStream('x'));
      await store.delete('only');
      expect(existsSync(root)).toBe(true);
    });

    it('races safely with puts into the directories it prunes', async () => {
      // Each round deletes the only blob of a directory while a put into that
      // same directory is in flight, so pruning and mkdir+rename interleave.
      const rounds = 150;
      const pathOf = (i: number) => `state/ns/k/.staging/t/attachments/${i}`;
      await store.put(pathOf(0), bytesStream('blob 0'));
      for (let i = 1; i <= rounds; i++) {
        await Promise.all([store.put(pathOf(i), bytesStream(`blob ${i}`)), store.delete(pathOf(i - 1))]);
      }
      const remaining: string[] = [];
      for await (const info of store.list('state/')) remaining.push(info.path);
      expect(remaining).toEqual([pathOf(rounds)]);
    });
  });

  describe('copy', () => {
    it('shares no later writes: a put to the source leaves the hard-linked target alone', async () => {
      await store.put('a/source', bytesStream('v1'));
      await store.copy('a/source', 'b/target');
      await store.put('a/source', bytesStream('v2 longer'));
      expect(new TextDecoder().decode(await readBytes((await store.get('b/target'))!))).toBe('v1');
    });
  });

  describe('put', () => {
    it('keeps memory bounded: a 256 MiB stream grows rss by far less than 64 MiB', async () => {
      const total = 256 * MiB;
      let produced = 0;
      let peakRss = 0;
      global.gc?.();
      const baseline = process.memoryUsage().rss;
      const source = new ReadableStream<Uint8Array>(
        {
          pull(controller) {
            if (produced >= total) return controller.close();
            // A fresh chunk each time, as a network source would produce.
            controller.enqueue(new Uint8Array(64 * 1024).fill(produced & 0xff));
            produced += 64 * 1024;
            if (produced % (4 * MiB) === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
          },
        },
        { highWaterMark: 0 },
      );
      const started = performance.now();
      await expect(store.put(blobPath, source)).resolves.toEqual({ size: total });
      const seconds = (performance.now() - started) / 1000;
      const growthMiB = (peakRss - baseline) / MiB;
      console.info(`256 MiB put: ${seconds.toFixed(1)} s, peak rss growth ${growthMiB.toFixed(1)} MiB`);
      expect(growthMiB).toBeLessThan(64);
      expect((await store.stat(blobPath))?.size).toBe(total);
    }, 120_000);
  });
});
