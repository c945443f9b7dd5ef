import { createHash } from 'node:crypto';
import { Agent } from 'node:http';
import { createServer } from 'node:net';
import { ListMultipartUploadsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { BlobStore } from '@attache/core';
import {
  bytesStream,
  describeBlobStore,
  describeRadosgw,
  patternStream,
  readBytes,
} from '@attache/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Blobs, type S3BlobsOptions } from '../src/index.js';

const MiB = 1024 * 1024;
const runId = `run-${Date.now().toString(36)}`;
let prefixCounter = 0;
/** Every store gets its own key prefix, so tests sharing a bucket never see each other's objects. */
const freshPrefix = () => `${runId}/store-${++prefixCounter}/`;

async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    hash.update(value);
    size += value.byteLength;
  }
  return { digest: hash.digest('hex'), size };
}

/** Pattern bytes (as in the shared suite) that error with `failure` once `failAfter` bytes were produced. */
function failingPatternStream(failAfter: number, failure: Error): ReadableStream<Uint8Array> {
  const reader = patternStream(failAfter).getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.error(failure);
        else controller.enqueue(value);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Records every S3 command the client sends, with "!" appended when it failed. */
function recordCommands(client: S3Client): string[] {
  const sent: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        const result = await next(args);
        sent.push(String(context.commandName));
        return result;
      } catch (error) {
        sent.push(`${String(context.commandName)}!`);
        throw error;
      }
    },
    { step: 'initialize', name: 'attacheTestRecordCommands' },
  );
  return sent;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

// On Ceph's RADOS Gateway, a real S3 implementation (the run's shared
// cluster, see packages/testing/src/radosgw.ts); every store has a key prefix
// of its own in the one bucket.
describeRadosgw('s3Blobs on radosgw', (server) => {
  const connection = () => ({
    endpoint: server.endpoint,
    region: server.region,
    credentials: server.credentials,
    forcePathStyle: true,
  });
  const newStore = (options: Partial<S3BlobsOptions> = {}) =>
    s3Blobs({ bucket: server.bucket, prefix: freshPrefix(), ...connection(), ...options });
  /** A client the test configured (and can observe); the store is built around it. */
  const newClient = (agent?: Agent) =>
    new S3Client({
      ...connection(),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(agent === undefined ? {} : { requestHandler: new NodeHttpHandler({ httpAgent: agent }) }),
    });

  describeBlobStore('s3Blobs (radosgw)', () => newStore());

  describe('multipart upload', () => {
    it('round-trips 20 MiB in 5 MiB parts byte-exact', async () => {
      const client = newClient();
      const sent = recordCommands(client);
      const store = s3Blobs({ bucket: server.bucket, prefix: freshPrefix(), client, partSize: 5 * MiB, queueSize: 2 });
      const size = 20 * MiB;
      const expected = await sha256Of(patternStream(size));

      await expect(store.put('big/blob', patternStream(size))).resolves.toEqual({ size });

      expect(sent.filter((name) => name === 'UploadPartCommand')).toHaveLength(4);
      expect(sent).toContain('CompleteMultipartUploadCommand');
      expect((await store.stat('big/blob'))?.size).toBe(size);
      expect(await sha256Of((await store.get('big/blob'))!)).toEqual(expected);
      client.destroy();
    });

    it('leaves no object and no multipart upload when the source errors after two parts', async () => {
      const client = newClient();
      const sent = recordCommands(client);
      const prefix = freshPrefix();
      const store = s3Blobs({ bucket: server.bucket, prefix, client, partSize: 5 * MiB, queueSize: 2 });
      const failure = new Error('client went away');

      await expect(store.put('big/blob', failingPatternStream(12 * MiB, failure))).rejects.toBe(failure);

      // The upload really was multipart and was aborted, not merely never started.
      expect(sent.filter((name) => name === 'UploadPartCommand')).toHaveLength(2);
      expect(sent).toContain('AbortMultipartUploadCommand');
      expect(sent).not.toContain('CompleteMultipartUploadCommand');
      expect(await store.stat('big/blob')).toBeUndefined();
      expect(await store.get('big/blob')).toBeUndefined();
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: prefix }));
      expect(uploads.Uploads ?? []).toEqual([]);
      client.destroy();
    });

    it('leaves no object and no multipart upload when aborted after two parts', async () => {
      const client = newClient();
      const sent = recordCommands(client);
      const prefix = freshPrefix();
      const store = s3Blobs({ bucket: server.bucket, prefix, client, partSize: 5 * MiB, queueSize: 2 });
      const controller = new AbortController();
      const reason = new Error('lease expired');
      const source = patternStream(64 * MiB);
      let produced = 0;
      const counting = source.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, streamController) {
            produced += chunk.byteLength;
            if (produced > 12 * MiB) controller.abort(reason);
            streamController.enqueue(chunk);
          },
        }),
      );

      await expect(store.put('big/blob', counting, { signal: controller.signal })).rejects.toBe(reason);

      expect(sent).toContain('AbortMultipartUploadCommand');
      expect(sent).not.toContain('CompleteMultipartUploadCommand');
      expect(await store.stat('big/blob')).toBeUndefined();
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: prefix }));
      expect(uploads.Uploads ?? []).toEqual([]);
      client.destroy();
    });

    it('sends a body smaller than one part as a single PutObject', async () => {
      const client = newClient();
      const sent = recordCommands(client);
      const store = s3Blobs({ bucket: server.bucket, prefix: freshPrefix(), client });
      await store.put('small', patternStream(MiB));
      expect(sent).toEqual(['PutObjectCommand']);
      client.destroy();
    });
  });

  describe('key prefix', () => {
    it('isolates stores that share a bucket', async () => {
      const shared = freshPrefix();
      const a = newStore({ prefix: `${shared}a/` });
      const b = newStore({ prefix: `${shared}b/` });
      const whole = newStore({ prefix: shared });
      await a.put('same/path', bytesStream('from a'));
      await b.put('same/path', bytesStream('from b'));

      expect(new TextDecoder().decode(await readBytes((await a.get('same/path'))!))).toBe('from a');
      expect(new TextDecoder().decode(await readBytes((await b.get('same/path'))!))).toBe('from b');
      const listed: string[] = [];
      for await (const info of a.list('')) listed.push(info.path);
      expect(listed).toEqual(['same/path']);
      const all: string[] = [];
      for await (const info of whole.list('')) all.push(info.path);
      expect(all.sort()).toEqual(['a/same/path', 'b/same/path']);

      await a.delete('same/path');
      expect(await a.stat('same/path')).toBeUndefined();
      expect((await b.stat('same/path'))?.size).toBe(6);
      await Promise.all([a.close?.(), b.close?.(), whole.close?.()]);
    });

    it('must end with "/", so one prefix can never list another ("t" vs "t2")', () => {
      expect(() => s3Blobs({ bucket: 'b', prefix: 'tenant' })).toThrow(TypeError);
      expect(() => s3Blobs({ bucket: 'b', prefix: '/tenant/' })).toThrow(TypeError);
      expect(() => s3Blobs({ bucket: 'b', prefix: 'a//' })).toThrow(TypeError);
    });

    it('lists across pages', async () => {
      const client = newClient();
      const sent = recordCommands(client);
      const store = s3Blobs({ bucket: server.bucket, prefix: freshPrefix(), client, listPageSize: 10 });
      const count = 25;
      await Promise.all(
        Array.from({ length: count }, (_, index) => store.put(`many/${String(index).padStart(2, '0')}`, bytesStream('x'))),
      );
      await store.put('other', bytesStream('y'));
      sent.length = 0;
      const listed: string[] = [];
      for await (const info of store.list('many/')) {
        expect(info.size).toBe(1);
        listed.push(info.path);
      }
      expect(listed.sort()).toEqual(Array.from({ length: count }, (_, index) => `many/${String(index).padStart(2, '0')}`));
      expect(sent).toEqual(['ListObjectsV2Command', 'ListObjectsV2Command', 'ListObjectsV2Command']);
      client.destroy();
    });
  });

  describe('get', () => {
    it('frees the socket when a download is cancelled', async () => {
      // One socket at most: a leaked socket would also block the next request.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const client = newClient(agent);
      const store = s3Blobs({ bucket: server.bucket, prefix: freshPrefix(), client });
      await store.put('blob', patternStream(8 * MiB));
      const socketsInUse = () => Object.values(agent.sockets).flat().length;
      const idleSockets = () => Object.values(agent.freeSockets).flat().length;

      const reader = (await store.get('blob'))!.getReader();
      expect((await reader.read()).done).toBe(false);
      expect(socketsInUse()).toBe(1); // proves the count sees our download
      await reader.cancel();
      await expect.poll(() => socketsInUse() + idleSockets(), { timeout: 2_000 }).toBe(0);

      const next = await store.stat('blob');
      expect(next?.size).toBe(8 * MiB);
      client.destroy();
      agent.destroy();
    });

    it('finishes a download under way when the object is deleted meanwhile (why deleteGraceSeconds defaults to 0)', async () => {
      const store = newStore();
      const size = 32 * MiB;
      const expected = await sha256Of(patternStream(size));
      await store.put('moving', patternStream(size));
      const reader = (await store.get('moving'))!.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      await store.delete('moving');
      expect(await store.stat('moving')).toBeUndefined();
      const rest = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(first.value!);
        },
        async pull(controller) {
          const next = await reader.read();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
      });
      expect(await sha256Of(rest)).toEqual(expected);
    });
  });

  describe('copy', () => {
    it(
      'copies objects above the threshold server-side with UploadPartCopy, byte-exact',
      async () => {
        const client = newClient();
        const sent = recordCommands(client);
        const store = s3Blobs({
          bucket: server.bucket,
          prefix: freshPrefix(),
          client,
          multipartCopyThreshold: 6 * MiB,
          copyPartSize: 5 * MiB,
        });
        const size = 12 * MiB + 1;
        await store.put('source', patternStream(size));
        sent.length = 0;

        await store.copy('source', 'target');

        expect(sent.filter((name) => name === 'UploadPartCopyCommand')).toHaveLength(3);
        expect(sent).toContain('CompleteMultipartUploadCommand');
        expect(sent).not.toContain('CopyObjectCommand');
        const expected = await sha256Of(patternStream(size));
        expect(await sha256Of((await store.get('target'))!)).toEqual(expected);
        expect(await sha256Of((await store.get('source'))!)).toEqual(expected);
        client.destroy();
      },
    );

    it('stores, lists and copies (both ways) paths with characters URLs treat specially', async () => {
      const store = s3Blobs({
        bucket: server.bucket,
        prefix: freshPrefix(),
        ...connection(),
        multipartCopyThreshold: 6 * MiB,
        copyPartSize: 5 * MiB,
      });
      const names = ['a b', 'a+b', 'a?b', 'a#b', 'ünï/ç😀', 'a\'b"c', 'a&b=c;d', 'a%20b', 'x%2Fy'];
      for (const name of names) {
        await store.put(`small/${name}`, bytesStream(name));
        await store.copy(`small/${name}`, `small/${name}.copy`);
        expect(new TextDecoder().decode(await readBytes((await store.get(`small/${name}.copy`))!))).toBe(name);
        // radosgw 16.2 URL-decodes x-amz-copy-source twice in UploadPartCopy
        // (once in CopyObject), so a key with "%" cannot be copied in parts
        // there; AWS decodes once. See the README.
        if (name.includes('%')) continue;
        await store.put(`big/${name}`, patternStream(6 * MiB + 1));
        await store.copy(`big/${name}`, `big/${name}.copy`);
        expect((await store.stat(`big/${name}.copy`))?.size).toBe(6 * MiB + 1);
      }
      const listed: string[] = [];
      for await (const info of store.list('small/')) listed.push(info.path);
      expect(listed.sort()).toEqual(names.flatMap((name) => [`small/${name}`, `small/${name}.copy`]).sort());
    });

    it('fails a multipart copy whose source is replaced mid-copy, leaving no target and no upload', async () => {
      // radosgw 16.2 ignores x-amz-copy-source-if-match on UploadPartCopy (AWS
      // answers 412), so the pin alone would let the copy mix two versions.
      const client = newClient();
      const writer = newClient();
      const prefix = freshPrefix();
      const store = s3Blobs({ bucket: server.bucket, prefix, client, multipartCopyThreshold: 6 * MiB, copyPartSize: 5 * MiB, queueSize: 1 });
      const size = 12 * MiB;
      await store.put('source', patternStream(size));
      let replaced = false;
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const result = await next(args);
          if (context.commandName === 'UploadPartCopyCommand' && !replaced) {
            replaced = true;
            await writer.send(
              new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}source`, Body: new Uint8Array(size).fill(7) }),
            );
          }
          return result;
        },
        { step: 'initialize', name: 'attacheTestReplaceSourceAfterFirstPart' },
      );

      await expect(store.copy('source', 'target')).rejects.toThrow();

      expect(replaced).toBe(true);
      expect(await store.stat('target')).toBeUndefined();
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: prefix }));
      expect(uploads.Uploads ?? []).toEqual([]);
      client.destroy();
      writer.destroy();
    });

    it('copies objects up to the threshold with one CopyObject', async () => {
      const client = newClient();
      const sent = recordCommands(client);
      const store = s3Blobs({ bucket: server.bucket, prefix: freshPrefix(), client, multipartCopyThreshold: 6 * MiB });
      await store.put('source', patternStream(6 * MiB));
      sent.length = 0;
      await store.copy('source', 'target');
      expect(sent).toEqual(['HeadObjectCommand', 'CopyObjectCommand']);
      expect((await store.stat('target'))?.size).toBe(6 * MiB);
      client.destroy();
    });
  });

  describe('close', () => {
    it('leaves a client it was given usable', async () => {
      const client = newClient();
      const store = s3Blobs({ bucket: server.bucket, prefix: freshPrefix(), client });
      await store.put('blob', bytesStream('x'));
      await store.close?.();
      const again = s3Blobs({ bucket: server.bucket, prefix: freshPrefix(), client });
      await expect(again.put('blob', bytesStream('y'))).resolves.toEqual({ size: 1 });
      client.destroy();
    });
  });
});

describe('s3Blobs options', () => {
  it('refuses a part size below S3 minimum of 5 MiB', () => {
    expect(() => s3Blobs({ bucket: 'b', partSize: 1024 * 1024 })).toThrow(TypeError);
  });

  it('refuses connection options beside a client it was given', () => {
    const client = new S3Client({ region: 'us-east-1' });
    expect(() => s3Blobs({ bucket: 'b', client, endpoint: 'http://127.0.0.1:1' })).toThrow(/endpoint/);
    client.destroy();
  });
});

describe('s3Blobs when S3 cannot be reached', () => {
  let store: BlobStore;
  beforeAll(async () => {
    store = s3Blobs({
      bucket: 'attache-test',
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      forcePathStyle: true,
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    await store.close?.();
  });

  const unavailable = { code: 'unavailable', status: 503, retryAfterSeconds: 1 };

  it('rejects every operation with unavailable (503, retry after 1 s)', async () => {
    await expect(store.put('a/b', bytesStream('x'))).rejects.toMatchObject(unavailable);
    await expect(store.get('a/b')).rejects.toMatchObject(unavailable);
    await expect(store.get('a/b', { start: 0, end: 1 })).rejects.toMatchObject(unavailable);
    await expect(store.stat('a/b')).rejects.toMatchObject(unavailable);
    await expect(store.copy('a/b', 'a/c')).rejects.toMatchObject(unavailable);
    await expect(store.delete('a/b')).rejects.toMatchObject(unavailable);
    const listing = async () => {
      for await (const _ of store.list('')) void _;
    };
    await expect(listing()).rejects.toMatchObject(unavailable);
  });

  it('keeps the network error as the cause', async () => {
    const error = await store.stat('a/b').catch((caught: unknown) => caught);
    expect((error as Error).cause).toBeInstanceOf(Error);
  });
});
