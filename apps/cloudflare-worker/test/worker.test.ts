// The Worker (dist/worker.js, bundled as wrangler would) in miniflare, which
// runs it in workerd, Cloudflare's runtime, with a SQLite-backed Durable
// Object and an R2 bucket simulated locally. Driven over real HTTP from Node:
// the one-winner and all-or-nothing guarantees the Durable Object gives the
// engine, the alarm's sweep, a 64 MiB body streamed both ways,
// tus-js-client resuming after a cut connection, and CORS when configured. (The shared HTTP contract
// runs against it in contract.test.ts.)
import { createHash } from 'node:crypto';
import { r2Blobs } from '@attache/r2';
import { expectAttachment, expectResumedAfterCut, patternBytes, patternStream } from '@attache/testing';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startWorker, type RunningWorker } from './miniflare.js';

const MiB = 1024 * 1024;

describe('Cloudflare Worker in miniflare', () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    // Sweeps every second, and garbage waits one second for reads in flight.
    worker = await startWorker({ ATTACHE_SWEEP_INTERVAL_SECONDS: '1', ATTACHE_DELETE_GRACE_SECONDS: '1' });
  });
  afterAll(async () => {
    await worker?.close();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${worker.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  interface Lease {
    lease_id: string;
    txn_id: string;
    fencing_token: number;
  }
  const leaseHeaders = (lease: Lease) => ({
    'x-lease-id': lease.lease_id,
    'x-txn-id': lease.txn_id,
    'x-fencing-token': String(lease.fencing_token),
  });
  const acquire = async (key: string, extra: Record<string, unknown> = {}): Promise<Lease> => {
    const answer = await post('/acquire', { key, ttl_seconds: 30, owner: 'test', ...extra });
    expect(answer.status).toBe(200);
    return (await answer.json()) as Lease;
  };

  it('grants a key to exactly one of 40 concurrent acquires', async () => {
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, index) => post('/acquire', { key: 'one-winner', ttl_seconds: 30, owner: `client-${index}` })),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(39);
    await Promise.all(answers.map((answer) => answer.body?.cancel()));
  });

  it('commits every key of a transaction together, or none of them on rollback', async () => {
    const a = await acquire('txn/a');
    const b = await acquire('txn/b', { txn_id: a.txn_id });
    for (const [lease, key] of [[a, 'txn/a'], [b, 'txn/b']] as const) {
      const uploaded = await fetch(`${worker.baseUrl}/attachments?key=${key}&name=f.txt`, {
        method: 'POST',
        headers: { ...leaseHeaders(lease), 'content-type': 'text/plain' },
        body: key,
      });
      expect(uploaded.status).toBe(200);
      await uploaded.body?.cancel();
    }
    const listed = async (key: string) =>
      ((await (await fetch(`${worker.baseUrl}/attachments?key=${key}`)).json()) as { attachments: { name: string }[] }).attachments.map((x) => x.name);
    expect(await listed('txn/a')).toEqual([]);
    expect((await post('/release', { key: 'txn/b', lease_id: b.lease_id, txn_id: b.txn_id }, leaseHeaders(b))).status).toBe(200);
    expect(await listed('txn/a')).toEqual(['f.txt']);
    expect(await listed('txn/b')).toEqual(['f.txt']);

    const c = await acquire('txn/c');
    const d = await acquire('txn/d', { txn_id: c.txn_id });
    for (const [lease, key] of [[c, 'txn/c'], [d, 'txn/d']] as const) {
      const uploaded = await fetch(`${worker.baseUrl}/attachments?key=${key}&name=f.txt`, {
        method: 'POST',
        headers: { ...leaseHeaders(lease), 'content-type': 'text/plain' },
        body: key,
      });
      await uploaded.body?.cancel();
    }
    expect((await post('/release', { key: 'txn/c', lease_id: c.lease_id, txn_id: c.txn_id, rollback: true }, leaseHeaders(c))).status).toBe(200);
    expect(await listed('txn/c')).toEqual([]);
    expect(await listed('txn/d')).toEqual([]);
    // The rolled-back writes' blobs (each at its version's committed path: a
    // lone part) are garbage, deleted once the delete grace (1 s here) passed.
    const left = async () => {
      const paths = [];
      for await (const blob of r2Blobs({ bucket: worker.bucket }).list('state/default/txn/')) {
        if (blob.path.startsWith('state/default/txn/c/') || blob.path.startsWith('state/default/txn/d/')) paths.push(blob.path);
      }
      return paths;
    };
    const deadline = Date.now() + 15_000;
    while ((await left()).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await left()).toEqual([]);
  });

  it('rolls back an expired lease from the Durable Object’s alarm, with nobody touching the key', async () => {
    const lease = await acquire('expiring', { ttl_seconds: 1 });
    const uploaded = await fetch(`${worker.baseUrl}/attachments?key=expiring&name=gone.bin`, {
      method: 'POST',
      headers: { ...leaseHeaders(lease), 'content-type': 'application/octet-stream' },
      body: new Uint8Array(1000),
    });
    expect(uploaded.status).toBe(200);
    await uploaded.body?.cancel();
    const blobs = r2Blobs({ bucket: worker.bucket });
    // Staged blobs sit in the flat staging area, named after their transaction.
    const underKey = async () => {
      const paths = [];
      for await (const blob of blobs.list('state/')) if (blob.path.includes(lease.txn_id) || blob.path.startsWith('state/default/expiring/')) paths.push(blob.path);
      return paths;
    };
    expect(await underKey()).toHaveLength(1);
    const deadline = Date.now() + 15_000;
    while ((await underKey()).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await underKey()).toEqual([]);
  });

  it('takes a tus upload into a lease transaction over two PATCHes, parts in R2, staged at the last byte', async () => {
    const bytes = new Uint8Array(300_000).map((_, index) => (index * 31) % 251);
    const lease = await acquire('tus');
    const tus = { 'tus-resumable': '1.0.0' };
    const created = await fetch(`${worker.baseUrl}/uploads?key=tus`, {
      method: 'POST',
      headers: { ...tus, ...leaseHeaders(lease), 'upload-length': String(bytes.byteLength), 'upload-metadata': `filename ${btoa('w.bin')}` },
    });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get('location')!, worker.baseUrl).href;
    const patch = (offset: number, body: Uint8Array<ArrayBuffer>) =>
      fetch(url, { method: 'PATCH', headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) }, body });
    expect((await patch(0, bytes.slice(0, 100_000))).status).toBe(204);
    const last = await patch(100_000, bytes.slice(100_000));
    expect(last.status).toBe(204);
    expect((await post('/release', { key: 'tus', lease_id: lease.lease_id, txn_id: lease.txn_id }, leaseHeaders(lease))).status).toBe(200);
    const listed = (await (await fetch(`${worker.baseUrl}/attachments?key=tus`)).json()) as { attachments: { id: string; sha256: string }[] };
    expect(listed.attachments).toMatchObject([{ id: last.headers.get('x-attachment-id'), sha256: createHash('sha256').update(bytes).digest('hex') }]);
  });

  it('makes a document of a tus upload sent in one request (creation-with-upload): its R2 part copied into place, bytes and digests right', async () => {
    const bytes = patternBytes(300_000, 9);
    const created = await fetch(`${worker.baseUrl}/uploads`, {
      method: 'POST',
      headers: {
        'tus-resumable': '1.0.0',
        'upload-length': String(bytes.byteLength),
        'upload-metadata': `filename ${btoa('once.bin')}`,
        'content-type': 'application/offset+octet-stream',
      },
      body: bytes,
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('upload-offset')).toBe(String(bytes.byteLength));
    await expectAttachment(worker.baseUrl, created.headers.get('x-attachment-id')!, bytes);
  });

  it('resumes a tus-js-client upload after its connection is cut mid-upload: bytes, CRC-32 and SHA-256 right, resumed not restarted', async () => {
    // Cut after 7 MiB on the wire: the part before the cut is above R2's 5 MiB minimum part size, and one that is not is covered too (3 MiB).
    await expectResumedAfterCut(worker.baseUrl, { size: 12 * MiB, cutAfterBytes: 7 * MiB });
    await expectResumedAfterCut(worker.baseUrl, { size: 6 * MiB, cutAfterBytes: 3 * MiB });
  }, 60_000);

  it('answers CORS for the origins ATTACHE_CORS_ORIGINS lists: a tus preflight before the token, and readable tus answers', async () => {
    const app = 'https://app.example.test';
    const withCors = await startWorker({ ATTACHE_CORS_ORIGINS: `${app}, http://localhost:5173`, ATTACHE_TOKEN: 'sesame' });
    onTestFinished(() => withCors.close());
    const preflight = await fetch(`${withCors.baseUrl}/uploads`, {
      method: 'OPTIONS',
      headers: { origin: app, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,tus-resumable,upload-length,upload-metadata' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(app);
    expect(preflight.headers.get('tus-version')).toBe('1.0.0');
    const created = await fetch(`${withCors.baseUrl}/uploads`, {
      method: 'POST',
      headers: { origin: app, authorization: 'Bearer sesame', 'tus-resumable': '1.0.0', 'upload-length': '3', 'upload-metadata': `filename ${btoa('c.bin')}` },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBe(app);
    expect(created.headers.get('access-control-expose-headers')).toContain('Location');
    // Another origin: no CORS headers (and the token is asked for).
    const other = await fetch(`${withCors.baseUrl}/uploads`, { method: 'OPTIONS', headers: { origin: 'https://other.example.test', 'access-control-request-method': 'POST' } });
    expect(other.status).toBe(401);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('streams a 64 MiB upload into R2 and back, byte for byte, while promotion moves it', { timeout: 180_000 }, async () => {
    // Default settings: a download that starts on the staged object right
    // after the release must not be cut when promotion replaces it. (R2
    // does not promise that a read survives its object's deletion, so the
    // delete grace keeps the object; miniflare's R2, on local files, would
    // survive it anyway — this guards the path, the grace tests are in core.)
    const defaults = await startWorker();
    onTestFinished(() => defaults.close());
    const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${defaults.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    const acquired = await postJson('/acquire', { key: 'large', owner: 'test', ttl_seconds: 60 });
    expect(acquired.status).toBe(200);
    const lease = (await acquired.json()) as Lease;
    const size = 64 * MiB;
    const sent = createHash('sha256');
    // A multipart form of one file, streamed: the server cannot know it is
    // the only part, so it stages the object and promotes it after the
    // release (a raw upload would go straight to its committed path).
    const boundary = 'attache-worker-test';
    const encoder = new TextEncoder();
    const body = patternStream(size, MiB).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        start(controller) {
          controller.enqueue(
            encoder.encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
          );
        },
        transform(chunk, controller) {
          sent.update(chunk);
          controller.enqueue(chunk);
        },
        flush(controller) {
          controller.enqueue(encoder.encode(`\r\n--${boundary}--\r\n`));
        },
      }),
    );
    const uploaded = await fetch(`${defaults.baseUrl}/attachments?key=large`, {
      method: 'POST',
      headers: { ...leaseHeaders(lease), 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(uploaded.status).toBe(200);
    const [attachment] = ((await uploaded.json()) as { attachments: Array<{ size: number; sha256: string }> }).attachments;
    const expected = sent.digest('hex');
    expect(attachment).toMatchObject({ size, sha256: expected });
    const atCommittedPath = async () => {
      for await (const blob of r2Blobs({ bucket: defaults.bucket }).list('state/default/large/attachments/')) if (blob.size === size) return true;
      return false;
    };
    expect(await atCommittedPath()).toBe(false);
    expect((await postJson('/release', { key: 'large', lease_id: lease.lease_id, txn_id: lease.txn_id }, leaseHeaders(lease))).status).toBe(200);
    // The download starts on the staged object; it pauses after its first
    // chunk until promotion has copied the object and would have deleted
    // the staged one, then reads on.
    const download = await fetch(`${defaults.baseUrl}/attachment?key=large&name=big.bin`);
    expect(download.status).toBe(200);
    const promoted = atCommittedPath;
    const received = createHash('sha256');
    let length = 0;
    for await (const chunk of download.body as unknown as AsyncIterable<Uint8Array>) {
      if (length === 0) {
        for (let round = 0; round < 120 && !(await promoted()); round++) await new Promise((resolve) => setTimeout(resolve, 250));
        expect(await promoted()).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      received.update(chunk);
      length += chunk.byteLength;
    }
    expect(length).toBe(size);
    expect(received.digest('hex')).toBe(expected);
  });
});
