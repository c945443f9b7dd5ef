// The document face over HTTP: `POST /attachments` without key or lease
// creates attachments that are committed at once, each its own key.
import { newId } from '@attache/core';
import { describe, expect, it } from 'vitest';
import { MULTIPART, multipartBody } from './bodies.js';
import { expectError, freshKey, type AttachmentJson } from './harness.js';
import type { ContractContext } from './context.js';

export function documentScenarios(context: ContractContext): void {
  describe('document uploads (no key, no lease)', () => {
    it('creates a committed document from a raw body, readable by id at once', async () => {
      const { http } = context;
      const response = await fetch(http.url('/attachments', { name: 'invoice.pdf' }), {
        method: 'POST',
        headers: { 'Content-Type': 'application/pdf' },
        body: '%PDF-1.7 tiny',
      });
      expect(response.status).toBe(200);
      const { attachment } = (await response.json()) as { attachment: AttachmentJson };
      expect(attachment).toMatchObject({ name: 'invoice.pdf', content_type: 'application/pdf', namespace: 'default', key: attachment.id });
      expect(response.headers.get('X-Attachment-ID')).toBe(attachment.id);
      const read = await http.get('/attachment', { id: attachment.id });
      expect(read.status).toBe(200);
      expect(await read.text()).toBe('%PDF-1.7 tiny');
      expect(read.headers.get('Content-Disposition')).toMatch(/^inline; /);
      const head = await http.get('/attachment', { id: attachment.id }, { method: 'HEAD' });
      expect(head.headers.get('X-Attachment-CRC32')).toBe(attachment.crc32);
    });

    it('creates one document per file part of a multipart upload', async () => {
      const { http } = context;
      const response = await fetch(http.url('/attachments'), {
        method: 'POST',
        headers: { 'Content-Type': MULTIPART },
        body: multipartBody([
          { name: 'a', filename: 'x.txt', data: 'x' },
          { name: 'b', filename: 'y.txt', data: 'yy' },
        ]),
      });
      expect(response.status).toBe(200);
      const { attachments } = (await response.json()) as { attachments: AttachmentJson[] };
      expect(attachments.map((a) => [a.name, a.size])).toEqual([
        ['x.txt', 1],
        ['y.txt', 2],
      ]);
      expect(new Set(attachments.map((a) => a.id)).size).toBe(2);
      expect(await (await http.get('/attachment', { id: attachments[1]!.id })).text()).toBe('yy');
    });

    it('keeps no document of a multipart upload whose second part fails', async () => {
      const { http, server } = context;
      // Background promotions of earlier calls must not move blobs between the two snapshots.
      await server.settled();
      const before = await server.blobs.paths('state/');
      const response = await fetch(http.url('/attachments', { max_bytes: '4' }), {
        method: 'POST',
        headers: { 'Content-Type': MULTIPART },
        body: multipartBody([
          { name: 'a', filename: 'ok.txt', data: 'ok' },
          { name: 'b', filename: 'too-big.txt', data: 'more than four bytes' },
        ]),
      });
      await expectError(response, 'attachment_too_large');
      await server.settled();
      expect(await server.blobs.paths('state/')).toEqual(before);
    });

    it('creates the document in the namespace asked for: listed by key=<id>&namespace=other, read by id', async () => {
      const { http } = context;
      const response = await fetch(http.url('/attachments', { namespace: 'other', name: 'a' }), { method: 'POST', body: 'in other' });
      expect(response.status).toBe(200);
      const { attachment } = (await response.json()) as { attachment: AttachmentJson };
      expect(attachment).toMatchObject({ name: 'a', namespace: 'other', key: attachment.id });
      expect((await http.committed(attachment.id, 'other')).map((a) => a.id)).toEqual([attachment.id]);
      expect(await http.committed(attachment.id)).toEqual([]);
      const read = await http.get('/attachment', { id: attachment.id });
      expect(read.status).toBe(200);
      expect(await read.text()).toBe('in other');

      const multipart = await fetch(http.url('/attachments', { namespace: 'other' }), {
        method: 'POST',
        headers: { 'Content-Type': MULTIPART },
        body: multipartBody([{ name: 'f', filename: 'm.txt', data: 'm' }]),
      });
      expect(multipart.status).toBe(200);
      const { attachments } = (await multipart.json()) as { attachments: AttachmentJson[] };
      expect(attachments.map((a) => a.namespace)).toEqual(['other']);
    });

    it('refuses an invalid namespace for a document upload with 400 invalid_namespace', async () => {
      const response = await fetch(context.http.url('/attachments', { namespace: 'Bad!', name: 'a' }), { method: 'POST', body: 'x' });
      await expectError(response, 'invalid_namespace');
    });

    it('refuses to lease a document’s key (409 document_key), so nobody can overwrite or delete a document', async () => {
      const { http } = context;
      for (const namespace of [undefined, 'other']) {
        const response = await fetch(http.url('/attachments', { namespace, name: 'keep.txt' }), { method: 'POST', body: 'original' });
        const { attachment } = (await response.json()) as { attachment: AttachmentJson };
        const acquire = await http.postJson('/acquire', { namespace, key: attachment.id, owner: 'intruder', ttl_seconds: 30 });
        await expectError(acquire, 'document_key');
        expect(await (await http.get('/attachment', { id: attachment.id })).text()).toBe('original');
      }
    });

    it('refuses a multipart document upload whose parts share a name with 400 invalid_name, keeping no document', async () => {
      const { http, server } = context;
      // Background promotions of earlier calls must not move blobs between the two snapshots.
      await server.settled();
      const before = await server.blobs.paths('state/');
      const response = await fetch(http.url('/attachments'), {
        method: 'POST',
        headers: { 'Content-Type': MULTIPART },
        body: multipartBody([
          { name: 'a', filename: 'same.txt', data: 'one' },
          { name: 'b', filename: 'same.txt', data: 'two' },
        ]),
      });
      await expectError(response, 'invalid_name');
      await server.settled();
      expect(await server.blobs.paths('state/')).toEqual(before);
    });

    it('requires a name for a raw document upload', async () => {
      const response = await fetch(context.http.url('/attachments'), { method: 'POST', body: 'nameless' });
      await expectError(response, 'missing_name');
    });
    describe('with a client-chosen id (id=<UUIDv7>)', () => {
      const postDocument = (query: Record<string, string | undefined>, body: BodyInit = 'chosen', headers: Record<string, string> = {}) =>
        fetch(context.http.url('/attachments', { name: 'chosen.txt', ...query }), { method: 'POST', body, headers });

      it('creates the document under that id, readable by it at once', async () => {
        const { http } = context;
        for (const namespace of [undefined, 'other']) {
          const id = newId();
          const response = await postDocument({ id, namespace });
          expect(response.status).toBe(200);
          const { attachment } = (await response.json()) as { attachment: AttachmentJson };
          expect(attachment).toMatchObject({ id, key: id, namespace: namespace ?? 'default', name: 'chosen.txt' });
          expect(response.headers.get('X-Attachment-ID')).toBe(id);
          expect(await (await http.get('/attachment', { id })).text()).toBe('chosen');
        }
      });

      it('refuses an id an attachment already has with 409 attachment_exists, keeping the first and nothing of the second', async () => {
        const { http, server } = context;
        const id = newId();
        expect((await postDocument({ id }, 'first')).status).toBe(200);
        // A keyed attachment's id is taken too.
        const lease = await http.acquire(freshKey('chosen'));
        const keyed = (await (await http.uploadRaw(lease, 'k.txt', 'keyed')).json()) as { attachment: AttachmentJson };
        await http.release(lease);
        await server.settled();
        const blobsBefore = await server.blobs.paths('state/');
        for (const namespace of [undefined, 'other']) {
          await expectError(await postDocument({ id, namespace }, 'second'), 'attachment_exists');
          await expectError(await postDocument({ id: keyed.attachment.id, namespace }, 'third'), 'attachment_exists');
        }
        expect(await (await http.get('/attachment', { id })).text()).toBe('first');
        expect(await (await http.get('/attachment', { id: keyed.attachment.id })).text()).toBe('keyed');
        await server.settled();
        expect(await server.blobs.paths('state/')).toEqual(blobsBefore);
      });

      it('refuses a malformed id with 400 invalid_ref: not a UUID, not version 7, not lowercase', async () => {
        const v7 = newId();
        for (const id of ['not-an-id', '0190a0a0-0000-4000-8000-000000000000', v7.toUpperCase(), `${v7}0`, '../../etc']) {
          await expectError(await postDocument({ id }), 'invalid_ref');
        }
      });

      it('refuses id with a key (the server names keyed attachments) or with a form, with 400 invalid_query', async () => {
        const { http } = context;
        const lease = await http.acquire(freshKey('chosen'));
        await expectError(await http.uploadRaw(lease, 'x.txt', 'x', { id: newId() }), 'invalid_query');
        const form = await postDocument({ id: newId(), name: undefined }, multipartBody([{ name: 'f', filename: 'f.txt', data: 'f' }]), { 'Content-Type': MULTIPART });
        await expectError(form, 'invalid_query');
        expect(await http.namesUnderLease(lease)).toEqual([]);
      });
    });
  });
}
