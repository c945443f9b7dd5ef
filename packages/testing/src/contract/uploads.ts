// Raw uploads (the body is the attachment): content types, prevent_overwrite,
// size limits and client checksums. Multipart has its own file.
import { describe, expect, it } from 'vitest';
import { bytes, patternBytes, sha256Base64, sha256Hex } from './bodies.js';
import { expectError, freshKey, leaseHeaders, type AttachmentJson } from './harness.js';
import type { ContractContext } from './context.js';

export function uploadScenarios(context: ContractContext): void {
  describe('raw uploads', () => {
    it('takes the content type from the query, else the request, else application/octet-stream', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const typeOf = async (response: Response) => ((await response.json()) as { attachment: AttachmentJson }).attachment.content_type;
      expect(await typeOf(await http.uploadRaw(lease, 'q.bin', 'x', { content_type: 'image/png' }, { 'Content-Type': 'text/plain' }))).toBe('image/png');
      expect(await typeOf(await http.uploadRaw(lease, 'h.txt', 'x', {}, { 'Content-Type': 'text/csv' }))).toBe('text/csv');
      expect(await typeOf(await http.uploadRaw(lease, 'n.bin', bytes('x')))).toBe('application/octet-stream');
      // A form encoding describes the envelope, not the attachment.
      expect(await typeOf(await http.uploadRaw(lease, 'f.bin', 'x', {}, { 'Content-Type': 'application/x-www-form-urlencoded' }))).toBe(
        'application/octet-stream',
      );
    });

    it('stores an 8 MiB body intact, byte for byte', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const content = patternBytes(8 * 1024 * 1024);
      const response = await http.uploadRaw(lease, 'big.bin', content);
      expect(response.status).toBe(200);
      const { attachment } = (await response.json()) as { attachment: AttachmentJson };
      expect(attachment).toMatchObject({ size: content.byteLength, sha256: sha256Hex(content) });
      await http.release(lease);
      const download = await http.get('/attachment', { key: lease.key, name: 'big.bin' });
      const received = new Uint8Array(await download.arrayBuffer());
      expect(received.byteLength).toBe(content.byteLength);
      expect(sha256Hex(received)).toBe(sha256Hex(content));
    });

    it('accepts an empty body as an empty attachment', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const response = await http.uploadRaw(lease, 'empty.txt', '');
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ attachment: { size: 0, sha256: sha256Hex('') } });
    });

    it('answers prevent_overwrite on an existing name with noop and the existing attachment', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      const first = (await (await http.uploadRaw(lease, 'keep.txt', 'original')).json()) as { attachment: AttachmentJson };
      const again = await http.uploadRaw(lease, 'keep.txt', 'replacement', { prevent_overwrite: 'true' });
      expect(again.status).toBe(200);
      expect(await again.json()).toMatchObject({ noop: true, attachment: { id: first.attachment.id, size: 8 } });
      const read = await http.get('/attachment', { key: lease.key, name: 'keep.txt' }, { headers: leaseHeaders(lease) });
      expect(await read.text()).toBe('original');
      const fresh = await http.uploadRaw(lease, 'new.txt', 'new', { prevent_overwrite: '1' });
      expect(await fresh.json()).toMatchObject({ noop: false, attachment: { name: 'new.txt' } });
    });

    it('verifies X-Attachment-CRC32 and Content-Digest, answering 400 checksum_mismatch and storing nothing', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      const content = 'checksummed bytes';
      await expectError(await http.uploadRaw(lease, 'c.txt', content, {}, { 'X-Attachment-CRC32': '00000000' }), 'checksum_mismatch');
      await expectError(
        await http.uploadRaw(lease, 'c.txt', content, {}, { 'Content-Digest': `sha-256=:${sha256Base64('other')}:` }),
        'checksum_mismatch',
      );
      expect(await http.namesUnderLease(lease)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);

      const good = await http.uploadRaw(lease, 'c.txt', content, {}, { 'Content-Digest': `sha-512=:AAAA:, sha-256=:${sha256Base64(content)}:` });
      expect(good.status).toBe(200);
      const { attachment } = (await good.json()) as { attachment: AttachmentJson };
      const goodCrc = await http.uploadRaw(lease, 'd.txt', content, {}, { 'X-Attachment-CRC32': attachment.crc32.toUpperCase() });
      expect(goodCrc.status).toBe(200);
    });

    it.skipIf(!context.supports.blobTraffic)('checks every sha-256 member of Content-Digest: differing members are 400 checksum_mismatch before the body is read', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      const content = 'digested twice';
      const right = `sha-256=:${sha256Base64(content)}:`;
      const wrong = `sha-256=:${sha256Base64('something else')}:`;
      const bytesBefore = server.blobs.bytesPut;
      for (const digest of [`${right}, ${wrong}`, `${wrong}, ${right}`, `sha-512=:AAAA:, ${right}, ${wrong}`]) {
        await expectError(await http.uploadRaw(lease, 'twice.txt', content, {}, { 'Content-Digest': digest }), 'checksum_mismatch');
      }
      // Two header lines are one list (RFC 9110 §5.3).
      const twoLines = new Headers(leaseHeaders(lease));
      twoLines.append('Content-Digest', right);
      twoLines.append('Content-Digest', wrong);
      const split = await fetch(http.url('/attachments', { key: lease.key, name: 'twice.txt' }), { method: 'POST', headers: twoLines, body: content });
      await expectError(split, 'checksum_mismatch');
      expect(server.blobs.bytesPut - bytesBefore).toBe(0);
      expect(await http.namesUnderLease(lease)).toEqual([]);

      const same = await http.uploadRaw(lease, 'twice.txt', content, {}, { 'Content-Digest': `${right}, ${right}` });
      expect(same.status).toBe(200);
      expect(await http.namesUnderLease(lease)).toEqual(['twice.txt']);
    });

    it('answers 413 attachment_too_large past max_bytes and keeps neither row nor blob', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      await expectError(await http.uploadRaw(lease, 'big.bin', '1234567', { max_bytes: '3' }), 'attachment_too_large');
      // A body far larger than the limit is cut off, not read to the end first.
      const cutOff = await http.uploadRaw(lease, 'huge.bin', patternBytes(4 * 1024 * 1024), { max_bytes: '1024' }).catch((error: unknown) => {
        // Bun closes the connection as it answers; the client may see that first (ContractSupport.earlyAnswerDelivered).
        if (context.supports.earlyAnswerDelivered) throw error;
        return undefined;
      });
      if (cutOff !== undefined) {
        // The rest of the body was never read: the connection cannot be
        // reused. (Servers that just close it, as Bun and workerd do, need not say so.)
        if (context.supports.earlyAnswerDelivered) expect(cutOff.headers.get('connection')).toBe('close');
        await expectError(cutOff, 'attachment_too_large');
      }
      expect(await http.namesUnderLease(lease)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);
      expect((await http.uploadRaw(lease, 'fits.bin', '123', { max_bytes: '3' })).status).toBe(200);
    });

    it.skipIf(!context.supports.serverOptions)('caps max_bytes at the server’s own limit', async () => {
      await context.withServer({ maxBytes: 8 }, async ({ http, blobs, store }) => {
        const lease = await http.acquire(freshKey());
        await expectError(await http.uploadRaw(lease, 'nine.bin', '123456789'), 'attachment_too_large');
        await expectError(await http.uploadRaw(lease, 'nine.bin', '123456789', { max_bytes: '100' }), 'attachment_too_large');
        expect((await http.uploadRaw(lease, 'eight.bin', '12345678')).status).toBe(200);
        await http.release(lease);
        expect((await http.committed(lease.key)).map((a) => a.name)).toEqual(['eight.bin']);
        await store.settled();
        expect(await blobs.ofLease(lease)).toEqual([expect.stringMatching(new RegExp(`^state/default/${lease.key}/attachments/`))]);
      });
    });
  });
}
