// AttacheFileInterceptor + @UploadedAttachment() in the application's own
// controller: the file part streams into the store, the route gets the
// Attachment, and a failed or aborted upload keeps nothing.
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { parseMultipartUploads, type Attachment, type AttachmentStore } from '@attache/core';
import { Controller, Module, Post, UseInterceptors } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttacheFileInterceptor, AttacheModule, UploadedAttachment } from '../src/index.js';
import {
  acquire,
  leaseHeaders,
  memoryStore,
  multipartBody,
  release,
  startApp,
  watchedMemoryBlobs,
  type RunningApp,
  type WatchedBlobs,
} from './helpers.js';

const AVATAR_LIMIT = 64 * 1024;

@Controller('profile')
class ProfileController {
  @Post('avatar')
  @UseInterceptors(AttacheFileInterceptor({ field: 'file', maxBytes: AVATAR_LIMIT }))
  avatar(@UploadedAttachment() attachment: Attachment): { id: string; name: string; size: number; key: string } {
    return { id: attachment.id, name: attachment.name, size: attachment.size, key: attachment.key };
  }
}

let app: RunningApp;
let store: AttachmentStore;
let blobs: WatchedBlobs;

beforeAll(async () => {
  blobs = watchedMemoryBlobs();
  store = memoryStore(blobs);
  @Module({ imports: [AttacheModule.forRoot({ store, global: true })], controllers: [ProfileController] })
  class AppModule {}
  app = await startApp(AppModule);
});

afterAll(async () => {
  await app.close();
  await store.close();
});

const BOUNDARY = 'nest-boundary-7d1f';
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function postForm(body: Uint8Array<ArrayBuffer>, path = '/profile/avatar', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${app.origin}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`, ...headers },
    body,
  });
}

/** Blob paths of the store once pending cleanups have run (polls briefly). */
async function settledBlobPaths(expected: string[]): Promise<string[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const paths = await blobs.paths();
    if (JSON.stringify(paths) === JSON.stringify(expected)) return paths;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return blobs.paths();
}


describe('AttacheFileInterceptor', () => {
  it('stores the file of a form as a committed document attachment and hands it to the route', async () => {
    const picture = new Uint8Array(40_000).map((_, index) => index % 256);
    const blobsBefore = await blobs.paths();
    const response = await postForm(
      multipartBody(BOUNDARY, [
        { field: 'caption', value: 'me at the beach' },
        { field: 'file', filename: 'me.png', contentType: 'image/png', bytes: picture },
      ]),
    );
    expect(response.status).toBe(201);
    const body = (await response.json()) as { id: string; name: string; size: number };
    expect(body).toMatchObject({ name: 'me.png', size: picture.length });
    expect((await blobs.paths()).length).toBe(blobsBefore.length + 1);

    const stored = await store.getAttachment({ id: body.id });
    expect(stored).toMatchObject({ contentType: 'image/png', sha256: sha256(picture) });
    const download = await fetch(`${app.origin}/v1/attachment?id=${body.id}`);
    expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(sha256(picture));
  });

  it('stages the file under the lease given in the headers, committed on release', async () => {
    const baseUrl = `${app.origin}/v1`;
    const lease = await acquire(baseUrl, 'users/42');
    const response = await postForm(
      multipartBody(BOUNDARY, [{ field: 'file', filename: 'avatar.jpg', contentType: 'image/jpeg', bytes: new Uint8Array([1, 2, 3]) }]),
      '/profile/avatar?key=users/42',
      leaseHeaders(lease),
    );
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ name: 'avatar.jpg', key: 'users/42', size: 3 });
    expect(await store.listAttachments({ key: 'users/42' })).toEqual([]);
    expect((await release(baseUrl, lease)).status).toBe(200);
    expect((await store.listAttachments({ key: 'users/42' })).map((attachment) => attachment.name)).toEqual(['avatar.jpg']);
  });

  it('answers a lease error of the store as an HTTP error with attache’s body', async () => {
    const lease = await acquire(`${app.origin}/v1`, 'users/43');
    const response = await postForm(
      multipartBody(BOUNDARY, [{ field: 'file', filename: 'a.txt', contentType: 'text/plain', bytes: new Uint8Array([1]) }]),
      '/profile/avatar?key=users/43',
      { ...leaseHeaders(lease), 'X-Fencing-Token': String(lease.fencing_token + 1) },
    );
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: 'fencing_mismatch' });
    expect((await release(`${app.origin}/v1`, lease, true)).status).toBe(200);
  });

  it('answers 413 past maxBytes and keeps neither attachment nor blob', async () => {
    const before = await blobs.paths();
    const response = await postForm(
      multipartBody(BOUNDARY, [{ field: 'file', filename: 'huge.bin', contentType: 'application/octet-stream', bytes: new Uint8Array(AVATAR_LIMIT + 1) }]),
    );
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'attachment_too_large' });
    expect(await settledBlobPaths(before)).toEqual(before);
  });

  it('keeps nothing when the envelope turns out malformed after the file', async () => {
    const before = await blobs.paths();
    const complete = multipartBody(BOUNDARY, [{ field: 'file', filename: 'cut.bin', contentType: 'application/octet-stream', bytes: new Uint8Array(5000).fill(3) }]);
    // Drop the closing boundary.
    const truncated = complete.subarray(0, complete.length - `--${BOUNDARY}--\r\n`.length - 2);
    const response = await postForm(truncated);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_body' });
    expect(await settledBlobPaths(before)).toEqual(before);
  });

  it('keeps nothing of an upload whose client disconnects half-way', async () => {
    const before = await blobs.paths();
    const bytesBefore = blobs.bytesPut;
    const head = new TextEncoder().encode(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="half.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    const { port } = new URL(app.origin);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /profile/avatar HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
        `Content-Length: ${head.length + 60_000}\r\n\r\n`,
    );
    socket.write(head);
    socket.write(new Uint8Array(30_000).fill(7));
    // Wait until the store has received some of the file, then hang up.
    for (let attempt = 0; attempt < 100 && blobs.bytesPut === bytesBefore; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(blobs.bytesPut).toBeGreaterThan(bytesBefore);
    socket.destroy();
    expect(await settledBlobPaths(before)).toEqual(before);
  });

  it('rejects a request that is not a form, and a form without the field, with 400 invalid_body', async () => {
    const raw = await fetch(`${app.origin}/profile/avatar`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: 'bytes',
    });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({ error: 'invalid_body' });
    const noFile = await postForm(multipartBody(BOUNDARY, [{ field: 'caption', value: 'no picture' }]));
    expect(noFile.status).toBe(400);
    expect(await noFile.json()).toMatchObject({ error: 'invalid_body' });
  });

  it('refuses a file in another field, and a second file, keeping nothing (core words both)', async () => {
    const blobsBefore = await blobs.paths();
    const otherField = await postForm(
      multipartBody(BOUNDARY, [
        { field: 'file', filename: 'full.png', contentType: 'image/png', bytes: new Uint8Array(20).fill(2) },
        { field: 'thumbnail', filename: 'thumb.png', contentType: 'image/png', bytes: new Uint8Array(10).fill(1) },
      ]),
    );
    expect(otherField.status).toBe(400);
    expect(await otherField.json()).toEqual({
      error: 'invalid_body',
      detail: 'the form has a file in field "thumbnail"; this upload takes its file in field "file"',
    });
    const secondFile = await postForm(
      multipartBody(BOUNDARY, [
        { field: 'file', filename: 'one.png', contentType: 'image/png', bytes: new Uint8Array(20) },
        { field: 'file', filename: 'two.png', contentType: 'image/png', bytes: new Uint8Array(20) },
      ]),
    );
    expect(secondFile.status).toBe(400);
    expect(await secondFile.json()).toEqual({ error: 'invalid_body', detail: 'this upload takes at most 1 file' });
    expect(await settledBlobPaths(blobsBefore)).toEqual(blobsBefore);
  });
});
