// Downloads of attachments encrypted at rest over real HTTP: a failure to
// authenticate found mid-stream must break the response (the client sees a
// truncated transfer, never a clean end with wrong or missing bytes), and an
// attachment whose key the server lacks is refused before any byte is sent.
import { createAttachmentStore, createHandler, memoryBlobs, memoryMetadata, type AttachmentStore } from '@attache/core';
import { afterEach, describe, expect, it } from 'vitest';
import { toNodeListener } from '../src/index.js';
import { getRaw, listen, readAll, settle, type Listening } from './servers.js';

const encryption = { keys: { k1: new Uint8Array(32).fill(4) }, activeKeyId: 'k1' };
const SIZE = 200 * 1024;

let listening: Listening | undefined;
afterEach(async () => {
  await listening?.close();
  listening = undefined;
});


async function storedAttachment() {
  const metadata = memoryMetadata();
  const blobs = memoryBlobs();
  const writer = createAttachmentStore({ metadata, blobs, encryption });
  const lease = await writer.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
  await lease.attach({ name: 'big.bin', body: new Uint8Array(SIZE).fill(9) });
  await lease.release();
  // The committed blob at its final path: promotion runs after the release answers.
  await writer.settled();
  const paths: string[] = [];
  for await (const blob of blobs.list('state/')) paths.push(blob.path);
  expect(paths).toHaveLength(1);
  return { metadata, blobs, path: paths[0]! };
}

async function serveStore(store: AttachmentStore): Promise<string> {
  listening = await listen(toNodeListener(createHandler({ store, basePath: '/v1' })));
  return `${listening.url}/v1/attachment?key=k&name=big.bin`;
}

describe('encrypted downloads over node:http', () => {
  it('serves the plaintext with the plaintext length', async () => {
    const { metadata, blobs } = await storedAttachment();
    const url = await serveStore(createAttachmentStore({ metadata, blobs, encryption }));
    const response = await getRaw(url);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBe(String(SIZE));
    const body = await readAll(response);
    expect(body.byteLength).toBe(SIZE);
    expect(body.every((byte) => byte === 9)).toBe(true);
  });

  it('aborts the response when a segment fails authentication mid-stream, after sending only intact bytes', async () => {
    const { metadata, blobs, path } = await storedAttachment();
    const stored = new Uint8Array(await new Response((await blobs.get(path))!).arrayBuffer());
    stored[stored.byteLength - 50]! ^= 0x01; // inside the last segment
    await blobs.put(path, new Blob([stored]).stream());
    const url = await serveStore(createAttachmentStore({ metadata, blobs, encryption }));
    const response = await getRaw(url);
    expect(response.statusCode).toBe(200);
    const received: Buffer[] = [];
    response.on('data', (chunk: Buffer) => received.push(chunk));
    const outcome = await settle(new Promise((resolve, reject) => {
      response.on('end', resolve);
      response.on('error', reject);
      response.on('aborted', () => reject(new Error('aborted')));
    }));
    expect(outcome.ok).toBe(false);
    const body = Buffer.concat(received);
    expect(body.byteLength).toBeLessThan(SIZE);
    expect(body.every((byte) => byte === 9)).toBe(true);
  });

  it('answers 500 key_unavailable, before any byte, when the server has no key for the attachment', async () => {
    const { metadata, blobs } = await storedAttachment();
    const url = await serveStore(createAttachmentStore({ metadata, blobs }));
    const response = await getRaw(url);
    expect(response.statusCode).toBe(500);
    expect(JSON.parse((await readAll(response)).toString('utf8'))).toMatchObject({ error: 'key_unavailable' });
  });
});
