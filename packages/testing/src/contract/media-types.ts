// Media types are parsed strictly wherever they enter (the `content_type`
// query, a raw upload's Content-Type, a multipart part's Content-Type, a JSON
// call's Content-Type), stored in canonical form, and what is served inline
// is decided from the parsed type. `image/png;,text/html` is the trick this
// guards against: lenient parsers call it an image, browsers and undici read
// the comma as a list and render the last member, HTML.
import { describe, expect, it } from 'vitest';
import { MULTIPART, multipartBody } from './bodies.js';
import { expectError, freshKey, leaseHeaders, type AttachmentJson } from './harness.js';
import type { ContractContext } from './context.js';

const TRICKS = ['image/png;,text/html', 'image/png,text/html', 'text/plain; charset=utf-8, text/html'];

export function mediaTypeScenarios(context: ContractContext): void {
  describe('media types', () => {
    it('refuses a comma trick in the content_type query with 400 invalid_content_type and stores nothing', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      for (const trick of TRICKS) {
        await expectError(await http.uploadRaw(lease, 'trick.png', '<script>1</script>', { content_type: trick }), 'invalid_content_type');
        // The document face too.
        // Background promotions of earlier calls must not move blobs between the two snapshots.
        await server.settled();
        const before = await server.blobs.paths('state/');
        const document = await fetch(http.url('/attachments', { name: 'trick.png', content_type: trick }), { method: 'POST', body: 'x' });
        await expectError(document, 'invalid_content_type');
        await server.settled();
        expect(await server.blobs.paths('state/')).toEqual(before);
      }
      expect(await http.namesUnderLease(lease)).toEqual([]);
    });

    it('refuses the trick in a raw upload’s own Content-Type with 400 invalid_content_type', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      for (const trick of TRICKS) {
        await expectError(await http.uploadRaw(lease, 'trick.png', 'x', {}, { 'Content-Type': trick }), 'invalid_content_type');
      }
      await expectError(await http.uploadRaw(lease, 'odd.bin', 'x', {}, { 'Content-Type': 'not a media type' }), 'invalid_content_type');
      expect(await http.namesUnderLease(lease)).toEqual([]);
    });

    it('refuses the trick in a multipart part’s Content-Type with 400 invalid_content_type, keeping no part', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      const body = multipartBody([
        { name: 'a', filename: 'fine.txt', contentType: 'text/plain', data: 'fine' },
        { name: 'b', filename: 'trick.png', contentType: 'image/png;,text/html', data: '<script>1</script>' },
      ]);
      const response = await fetch(http.url('/attachments', { key: lease.key }), {
        method: 'POST',
        headers: { ...leaseHeaders(lease), 'Content-Type': MULTIPART },
        body,
      });
      await expectError(response, 'invalid_content_type');
      expect(await http.namesUnderLease(lease)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);
      // The envelope's own Content-Type is checked as strictly.
      const envelope = await fetch(http.url('/attachments', { key: lease.key }), {
        method: 'POST',
        headers: { ...leaseHeaders(lease), 'Content-Type': `${MULTIPART}, text/html` },
        body: multipartBody([{ name: 'a', filename: 'fine.txt', data: 'fine' }]),
      });
      await expectError(envelope, 'invalid_content_type');
    });

    it('refuses a JSON call whose Content-Type is not one media type with 400 invalid_content_type', async () => {
      const response = await fetch(context.http.url('/acquire'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json, text/html' },
        body: JSON.stringify({ key: freshKey(), owner: 'o', ttl_seconds: 5 }),
      });
      await expectError(response, 'invalid_content_type');
    });

    it('stores and serves the canonical form of a valid media type', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const typeOf = async (response: Response) => ((await response.json()) as { attachment: AttachmentJson }).attachment.content_type;
      expect(await typeOf(await http.uploadRaw(lease, 'q.txt', 'x', { content_type: 'Text/Plain;Charset="utf-8"' }))).toBe('text/plain; charset=utf-8');
      expect(await typeOf(await http.uploadRaw(lease, 'h.txt', 'x', {}, { 'Content-Type': 'TEXT/CSV ; header=present' }))).toBe('text/csv; header=present');
      await http.release(lease);
      const read = await http.get('/attachment', { key: lease.key, name: 'q.txt' });
      expect(read.headers.get('Content-Type')).toBe('text/plain; charset=utf-8');
      expect(read.headers.get('Content-Disposition')).toMatch(/^inline; /);
    });

    it.skipIf(!context.supports.storeInProcess)('never serves a malformed stored type as HTML or inline (one stored through the TypeScript API, or before this check)', async () => {
      const { http, server } = context;
      const key = freshKey();
      const lease = await server.store.acquire({ key, owner: 'ts', ttlSeconds: 30 });
      for (const [index, trick] of TRICKS.entries()) {
        await lease.attach({ name: `t${index}.png`, body: new TextEncoder().encode('<script>1</script>'), contentType: trick });
      }
      await lease.release();
      for (const index of TRICKS.keys()) {
        const read = await http.get('/attachment', { key, name: `t${index}.png` });
        expect(read.status).toBe(200);
        expect(read.headers.get('Content-Type'), TRICKS[index]).toBe('application/octet-stream');
        expect(read.headers.get('Content-Type')).not.toMatch(/html/i);
        expect(read.headers.get('Content-Disposition')).toMatch(/^attachment; /);
        await read.body?.cancel();
      }
    });
  });
}
