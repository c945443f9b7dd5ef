// Downloads: headers, Range (206/416), If-None-Match (304), HEAD.
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from './bodies.js';
import { expectError, freshKey, type AttachmentJson } from './harness.js';
import type { ContractContext } from './context.js';

export function downloadScenarios(context: ContractContext): void {
  describe('downloads', () => {
    let key: string;
    let stored: AttachmentJson;
    const content = '0123456789';
    beforeAll(async () => {
      const { http } = context;
      const lease = await http.acquire((key = freshKey('ranges')));
      const response = await http.uploadRaw(lease, 'digits.txt', content, { content_type: 'application/x-digits' });
      stored = ((await response.json()) as { attachment: AttachmentJson }).attachment;
      await http.release(lease);
    });
    const download = (headers: Record<string, string> = {}, method = 'GET') =>
      context.http.get('/attachment', { key, name: 'digits.txt' }, { method, headers });
    /** The length of a streamed body, where the server sends it (`ContractSupport.streamedContentLength`). */
    const expectStreamedLength = (response: Response, length: number) => {
      const header = response.headers.get('Content-Length');
      if (context.supports.streamedContentLength) expect(header).toBe(String(length));
      // A host that drops it for a stream may keep it for a body it already holds whole (Bun does for a small blob kept inline); never a wrong one.
      else expect([null, String(length)]).toContain(header);
    };

    it('sends the stored type, length, validators, identity headers and nosniff', async () => {
      const response = await download();
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(content);
      const header = (name: string) => response.headers.get(name);
      expect(header('Content-Type')).toBe('application/x-digits');
      expectStreamedLength(response, 10);
      expect(header('ETag')).toBe(`"${sha256Hex(content)}"`);
      expect(header('Accept-Ranges')).toBe('bytes');
      expect(header('X-Attachment-ID')).toBe(stored.id);
      expect(header('X-Attachment-Name')).toBe('digits.txt');
      expect(header('X-Attachment-Size')).toBe('10');
      expect(header('X-Attachment-SHA256')).toBe(sha256Hex(content));
      expect(header('X-Attachment-CRC32')).toBe(stored.crc32);
      expect(header('X-Content-Type-Options')).toBe('nosniff');
      expect(header('Content-Disposition')).toBe(`attachment; filename="digits.txt"; filename*=UTF-8''digits.txt`);
      expect(new Date(header('Last-Modified')!).getTime()).toBeGreaterThan(0);
    });

    it('serves safe types inline in a sandbox', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      await http.uploadRaw(lease, 'greeting.txt', 'hi', {}, { 'Content-Type': 'text/plain' });
      await http.release(lease);
      const response = await http.get('/attachment', { key: lease.key, name: 'greeting.txt' });
      expect(response.headers.get('Content-Disposition')).toBe(`inline; filename="greeting.txt"; filename*=UTF-8''greeting.txt`);
      expect(response.headers.get('Content-Security-Policy')).toBe('sandbox');
    });

    it('answers HEAD with the headers of GET and no body', async () => {
      const response = await download({}, 'HEAD');
      expect(response.status).toBe(200);
      expect(response.headers.get('Content-Length')).toBe(context.supports.headContentLength ? '10' : null);
      expect(response.headers.get('X-Attachment-Size')).toBe('10');
      expect(response.headers.get('ETag')).toBe(`"${sha256Hex(content)}"`);
      expect(await response.text()).toBe('');
    });

    it('serves single ranges with 206 and Content-Range', async () => {
      const cases: [string, string, string][] = [
        ['bytes=2-4', '234', 'bytes 2-4/10'],
        ['bytes=7-', '789', 'bytes 7-9/10'],
        ['bytes=-3', '789', 'bytes 7-9/10'],
        ['bytes=5-100', '56789', 'bytes 5-9/10'],
      ];
      for (const [range, body, contentRange] of cases) {
        const response = await download({ Range: range });
        expect(response.status, range).toBe(206);
        expect(await response.text()).toBe(body);
        expect(response.headers.get('Content-Range')).toBe(contentRange);
        expectStreamedLength(response, body.length);
      }
    });

    it('ignores malformed and multi-range headers (200, whole body)', async () => {
      for (const range of ['bytes=4-2', 'bytes=0-1,3-4', 'items=0-1', 'bytes=abc']) {
        const response = await download({ Range: range });
        expect(response.status, range).toBe(200);
        expect(await response.text()).toBe(content);
      }
    });

    it('answers 416 with Content-Range bytes */size for a range past the end', async () => {
      for (const range of ['bytes=10-', 'bytes=99-100', 'bytes=-0']) {
        const response = await download({ Range: range });
        await expectError(response, 'range_not_satisfiable');
        expect(response.headers.get('Content-Range')).toBe('bytes */10');
      }
    });

    it('answers 304 with the ETag to a matching If-None-Match, and 200 otherwise', async () => {
      const etag = `"${sha256Hex(content)}"`;
      for (const header of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
        const response = await download({ 'If-None-Match': header });
        expect(response.status, header).toBe(304);
        expect(response.headers.get('ETag')).toBe(etag);
        expect(await response.text()).toBe('');
      }
      const changed = await download({ 'If-None-Match': '"something-else"' });
      expect(changed.status).toBe(200);
      expect(await changed.text()).toBe(content);
    });

    it('sends unsafe types as downloads with an RFC 6266 file name and a percent-encoded X-Attachment-Name', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const name = 'résumé "final"\u00a0€.html';
      await http.uploadRaw(lease, name, '<script>alert(1)</script>', { content_type: 'text/html' });
      await http.release(lease);
      const response = await http.get('/attachment', { key: lease.key, name });
      expect(response.headers.get('Content-Type')).toBe('text/html');
      expect(response.headers.get('Content-Disposition')).toBe(
        `attachment; filename="r_sum_ _final___.html"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%C2%A0%E2%82%AC.html`,
      );
      expect(response.headers.get('Content-Security-Policy')).toBeNull();
      expect(decodeURIComponent(response.headers.get('X-Attachment-Name')!)).toBe(name);
    });

    it('reads by id under its key, and not under another key', async () => {
      const { http } = context;
      expect(await (await http.get('/attachment', { key, id: stored.id })).text()).toBe(content);
      await expectError(await http.get('/attachment', { key: freshKey(), id: stored.id }), 'attachment_not_found');
    });
  });
}
