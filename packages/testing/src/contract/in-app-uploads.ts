// In-app uploads (a form posted to a route of the application's own) over
// real HTTP, for every way attache offers them: core's `storeFormUpload`
// behind a bare fetch server, the multer storage engine, the Nest
// interceptor, and each example app's POST /avatar. Every mount answers each
// mistake with the same status, code and message — the literal answers are
// written down once, here.
import { connect } from 'node:net';
import {
  createAttachmentStore,
  memoryBlobs,
  memoryMetadata,
  type AttachmentStore,
  type Lease,
} from '@attache/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchedBlobs, type WatchedBlobs } from '../watched-blobs.js';

/** The form field every in-app upload under test takes its one file from. */
export const IN_APP_FIELD = 'file';

export interface InAppMountOptions {
  store: AttachmentStore;
  /** The route takes one file, in this field. */
  field: string;
  /** Largest file the route accepts. */
  maxBytes: number;
}

export interface MountedInAppUpload {
  /** Absolute URL of the upload route, e.g. `http://127.0.0.1:41234/avatar`. It answers 2xx JSON with the attachment's `id`. */
  uploadUrl: string;
  close(): Promise<void>;
}

/**
 * Mounts a route that stores the one file of field `options.field` (at most
 * `options.maxBytes`) in `options.store`: a committed document without lease
 * headers, staged under the lease of `X-Lease-ID`/`X-Txn-ID`/`X-Fencing-Token`
 * and `?key=` with them.
 */
export type InAppMountFn = (options: InAppMountOptions) => Promise<MountedInAppUpload>;

export interface MistakeAnswer {
  status: number;
  error: string;
  detail: string;
}

export type InAppMistake = 'overLimit' | 'wrongField' | 'noForm' | 'secondFile' | 'noFile';

/** What every in-app upload route answers to each mistake (one file in field "file", at most `maxBytes`). */
export function inAppMistakeAnswers(maxBytes: number): Record<InAppMistake, MistakeAnswer> {
  return {
    overLimit: { status: 413, error: 'attachment_too_large', detail: `attachment is larger than ${maxBytes} bytes` },
    wrongField: {
      status: 400,
      error: 'invalid_body',
      detail: 'the form has a file in field "photo"; this upload takes its file in field "file"',
    },
    noForm: {
      status: 400,
      error: 'invalid_body',
      detail: 'this upload takes a multipart/form-data form; the request has Content-Type "application/json"',
    },
    secondFile: { status: 400, error: 'invalid_body', detail: 'this upload takes at most 1 file' },
    noFile: { status: 400, error: 'invalid_body', detail: 'the form has no file in field "file"' },
  };
}

function formWith(parts: [field: string, filename: string | undefined, bytes: Uint8Array<ArrayBuffer>][]): FormData {
  const form = new FormData();
  for (const [field, filename, bytes] of parts) {
    if (filename === undefined) form.append(field, new TextDecoder().decode(bytes));
    else form.append(field, new Blob([bytes], { type: 'application/octet-stream' }), filename);
  }
  return form;
}

/** Sends `mistake` to the upload route at `uploadUrl`. */
export function sendInAppMistake(uploadUrl: string, mistake: InAppMistake, maxBytes: number): Promise<Response> {
  const post = (body: BodyInit, headers: Record<string, string> = {}) => fetch(uploadUrl, { method: 'POST', headers, body });
  const small = new Uint8Array(16);
  switch (mistake) {
    case 'overLimit':
      return post(formWith([[IN_APP_FIELD, 'big.bin', new Uint8Array(maxBytes + 1)]]));
    case 'wrongField':
      return post(formWith([['photo', 'me.png', small]]));
    case 'noForm':
      return post(JSON.stringify({ file: 'me.png' }), { 'content-type': 'application/json' });
    case 'secondFile':
      return post(formWith([[IN_APP_FIELD, 'one.png', small], [IN_APP_FIELD, 'two.png', small]]));
    case 'noFile':
      return post(formWith([['caption', undefined, new TextEncoder().encode('no picture')]]));
  }
}

/** Status, code and message of an error answer (the JSON body must be API.md §3's). */
export async function mistakeAnswerOf(response: Response): Promise<MistakeAnswer> {
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await response.json()) as { error: string; detail: string };
  return { status: response.status, error: body.error, detail: body.detail };
}

export const IN_APP_MISTAKES: readonly InAppMistake[] = ['overLimit', 'wrongField', 'noForm', 'secondFile', 'noFile'];

const MISTAKE_TITLES: Record<InAppMistake, string> = {
  overLimit: 'a file over the limit',
  wrongField: 'a file in another field',
  noForm: 'a POST without a form',
  secondFile: 'a second file',
  noFile: 'a form without a file',
};

/**
 * Posts a form whose file is cut off half-way: the client sends headers and
 * part of the body, then drops the connection.
 */
export async function abortFormMidFile(uploadUrl: string, fileBytes: number): Promise<void> {
  const url = new URL(uploadUrl);
  const boundary = 'in-app-abort-4f2a';
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="${IN_APP_FIELD}"; filename="cut.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  const length = Buffer.byteLength(head) + fileBytes + Buffer.byteLength(tail);
  const socket = connect(Number(url.port), url.hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.write(
    `POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${length}\r\n\r\n${head}`,
  );
  socket.write(Buffer.alloc(Math.floor(fileBytes / 2), 7));
  // Let the server start streaming the file before the client goes away.
  await new Promise((resolve) => setTimeout(resolve, 100));
  socket.destroy();
}

/** Polls `read` until it returns `expected` (or fails with what it last read). */
export async function eventually<T>(read: () => Promise<T>, expected: T, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (JSON.stringify(last) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    last = await read();
  }
  expect(last).toEqual(expected);
}

const MAX_BYTES = 64 * 1024;

/** The in-app upload specification, run against `mount` on a memory store whose blobs the tests watch. */
export function describeInAppUploads(name: string, mount: InAppMountFn): void {
  describe(`in-app upload: ${name}`, () => {
    let store: AttachmentStore;
    let blobs: WatchedBlobs;
    let mounted: MountedInAppUpload;
    beforeAll(async () => {
      blobs = watchedBlobs(memoryBlobs());
      store = createAttachmentStore({ metadata: memoryMetadata(), blobs, sweepIntervalSeconds: 0 });
      mounted = await mount({ store, field: IN_APP_FIELD, maxBytes: MAX_BYTES });
    });
    afterAll(async () => {
      await mounted?.close();
      await store?.close();
    });

    const headersOf = (lease: Lease) => ({
      'X-Lease-ID': lease.leaseId,
      'X-Txn-ID': lease.txnId,
      'X-Fencing-Token': String(lease.fencingToken),
    });

    it("stores the form's file as a committed document", async () => {
      const bytes = new Uint8Array(MAX_BYTES).map((_, index) => index % 251);
      const response = await fetch(mounted.uploadUrl, { method: 'POST', body: formWith([[IN_APP_FIELD, 'scan.bin', bytes]]) });
      expect(response.status).toBeLessThan(300);
      const { id } = (await response.json()) as { id: string };
      expect((await store.getAttachment({ id })).size).toBe(bytes.length);
      const { body } = await store.get(`attachment://${id}`);
      expect(Buffer.from(await new Response(body).arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
    });

    it('stages the file under the lease the request carries, visible to all once released', async () => {
      const lease = await store.acquire({ key: 'in-app/staged', owner: 'spec', ttlSeconds: 60 });
      const response = await fetch(`${mounted.uploadUrl}?key=in-app%2Fstaged`, {
        method: 'POST',
        headers: headersOf(lease),
        body: formWith([[IN_APP_FIELD, 'receipt.pdf', new Uint8Array(10)]]),
      });
      expect(response.status).toBeLessThan(300);
      expect(await store.listAttachments({ key: 'in-app/staged' })).toEqual([]);
      await lease.release();
      expect((await store.listAttachments({ key: 'in-app/staged' })).map((a) => a.name)).toEqual(['receipt.pdf']);
    });

    for (const mistake of IN_APP_MISTAKES) {
      const expected = inAppMistakeAnswers(MAX_BYTES)[mistake];
      it(`answers ${MISTAKE_TITLES[mistake]} with ${expected.status} ${expected.error} and keeps nothing`, async () => {
        const before = await blobs.paths();
        const answer = await mistakeAnswerOf(await sendInAppMistake(mounted.uploadUrl, mistake, MAX_BYTES));
        expect(answer).toEqual(expected);
        await eventually(() => blobs.paths(), before);
      });
    }

    it('keeps nothing of a form whose client disconnects mid-file', async () => {
      const before = await blobs.paths();
      const bytesBefore = blobs.bytesPut;
      await abortFormMidFile(mounted.uploadUrl, MAX_BYTES);
      // The server did start streaming the file into the store…
      await eventually(async () => blobs.bytesPut > bytesBefore, true);
      // …and removed every byte of it.
      await eventually(() => blobs.paths(), before);
    });
  });
}
