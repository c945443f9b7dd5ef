// multipart/form-data uploads under a lease: each file part is one
// attachment, and the parts are kept all together or not at all.
import { describe, expect, it } from 'vitest';
import { MULTIPART, multipartBody } from './bodies.js';
import { expectError, freshKey, leaseHeaders, type AttachmentJson, type LeaseJson } from './harness.js';
import type { ContractContext } from './context.js';

export function multipartScenarios(context: ContractContext): void {
  const postForm = (lease: LeaseJson, body: Uint8Array<ArrayBuffer>, query: Record<string, string> = {}) =>
    fetch(context.http.url('/attachments', { key: lease.key, ...query }), {
      method: 'POST',
      headers: { ...leaseHeaders(lease), 'Content-Type': MULTIPART },
      body,
    });

  describe('multipart uploads', () => {
    it('stores every file part as an attachment, named by its filename and typed by the part', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const body = multipartBody([
        { name: 'note', data: 'a plain field, not a file' },
        { name: 'files', filename: 'one.txt', contentType: 'text/plain', data: 'first file' },
        { name: 'files', filename: 'two.png', contentType: 'image/png', data: new Uint8Array([137, 80, 78, 71]) },
      ]);
      const response = await postForm(lease, body);
      expect(response.status).toBe(200);
      const result = (await response.json()) as { attachments: AttachmentJson[]; noop: boolean };
      expect(result.noop).toBe(false);
      expect(result.attachments.map((a) => [a.name, a.content_type, a.size])).toEqual([
        ['one.txt', 'text/plain', 10],
        ['two.png', 'image/png', 4],
      ]);
      expect(response.headers.get('X-Fencing-Token')).toBe(String(lease.fencing_token));
      await http.release(lease);
      const second = await http.get('/attachment', { key: lease.key, name: 'two.png' });
      expect(new Uint8Array(await second.arrayBuffer())).toEqual(new Uint8Array([137, 80, 78, 71]));
    });

    it('lets the query name the first file part and type every part', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const body = multipartBody([
        { name: 'a', filename: 'ignored.txt', contentType: 'text/plain', data: 'a' },
        { name: 'b', filename: 'b.txt', contentType: 'text/plain', data: 'b' },
      ]);
      const response = await postForm(lease, body, { name: 'renamed.bin', content_type: 'application/x-custom' });
      const { attachments } = (await response.json()) as { attachments: AttachmentJson[] };
      expect(attachments.map((a) => [a.name, a.content_type])).toEqual([
        ['renamed.bin', 'application/x-custom'],
        ['b.txt', 'application/x-custom'],
      ]);
    });

    it('keeps none of the parts when one exceeds max_bytes (all or none)', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      const body = multipartBody([
        { name: 'a', filename: 'small.txt', data: 'tiny' },
        { name: 'b', filename: 'large.txt', data: 'far more than eight bytes' },
      ]);
      await expectError(await postForm(lease, body, { max_bytes: '8' }), 'attachment_too_large');
      expect(await http.namesUnderLease(lease)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);
    });

    it('with prevent_overwrite, keeps existing names unchanged and stores the new ones (noop only when all were kept)', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      await http.uploadRaw(lease, 'taken.txt', 'already here');
      const body = multipartBody([
        { name: 'a', filename: 'new.txt', data: 'new' },
        { name: 'b', filename: 'taken.txt', data: 'replacement' },
      ]);
      const response = await postForm(lease, body, { prevent_overwrite: 'true' });
      expect(response.status).toBe(200);
      const result = (await response.json()) as { attachments: AttachmentJson[]; noop: boolean };
      expect(result.attachments.map((a) => [a.name, a.size])).toEqual([
        ['new.txt', 3],
        ['taken.txt', 12],
      ]);
      expect(result.noop).toBe(false);
      const again = await postForm(lease, body, { prevent_overwrite: 'true' });
      expect(await again.json()).toMatchObject({ noop: true });
    });

    it('rejects a truncated envelope with 400 invalid_body and keeps none of its parts', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      const body = multipartBody([
        { name: 'a', filename: 'whole.txt', data: 'complete part' },
        { name: 'b', filename: 'cut.txt', data: 'this part never ends' },
      ]);
      await expectError(await postForm(lease, body.slice(0, body.length - 30)), 'invalid_body');
      expect(await http.namesUnderLease(lease)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);
    });

    it.skipIf(!context.supports.blobTraffic)('refuses parts that share a name with 400 invalid_name, keeping none and not streaming the repeat', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      const bytesBefore = server.blobs.bytesPut;
      const body = multipartBody([
        { name: 'a', filename: 'same.txt', data: 'first' },
        { name: 'b', filename: 'same.txt', data: 'second, never read' },
        { name: 'c', filename: 'same.txt', data: 'third' },
      ]);
      const refused = await expectError(await postForm(lease, body), 'invalid_name');
      expect(refused.detail).toContain('same.txt');
      expect(await http.namesUnderLease(lease)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);
      // Only the first part reached the blob store (and was deleted again).
      expect(server.blobs.bytesPut - bytesBefore).toBe(server.storedSize('first'.length));
    });

    it('counts the query name as the first part’s name when looking for repeats', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      const body = multipartBody([
        { name: 'a', filename: 'original.txt', data: 'first' },
        { name: 'b', filename: 'renamed.txt', data: 'second' },
      ]);
      await expectError(await postForm(lease, body, { name: 'renamed.txt' }), 'invalid_name');
      expect(await http.namesUnderLease(lease)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);
      // The file name the query replaced is free for a later part.
      const reuse = multipartBody([
        { name: 'a', filename: 'original.txt', data: 'first' },
        { name: 'b', filename: 'original.txt', data: 'second' },
      ]);
      const response = await postForm(lease, reuse, { name: 'renamed.txt' });
      expect(response.status).toBe(200);
      const { attachments } = (await response.json()) as { attachments: AttachmentJson[] };
      expect(attachments.map((a) => a.name)).toEqual(['renamed.txt', 'original.txt']);
    });

    it('answers 400 invalid_body for a form without a file part', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      await expectError(await postForm(lease, multipartBody([{ name: 'field', data: 'value' }])), 'invalid_body');
    });
  });
}
