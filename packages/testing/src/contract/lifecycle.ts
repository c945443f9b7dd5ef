// acquire → upload (staged) → release (commit) or rollback, as a client sees it.
import { describe, expect, it } from 'vitest';
import { bytes, sha256Hex } from './bodies.js';
import { expectError, freshKey, leaseHeaders, type AttachmentJson } from './harness.js';
import type { ContractContext } from './context.js';

export function lifecycleScenarios(context: ContractContext): void {
  describe('lifecycle', () => {
    it('stages an upload under the lease, hides it from public reads, and commits it on release', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      expect(lease).toMatchObject({ owner: 'tester', namespace: 'default' });
      const content = 'hello, attache';
      const uploaded = await http.uploadRaw(lease, 'greeting.txt', content, {}, { 'Content-Type': 'text/plain' });
      expect(uploaded.status).toBe(200);
      const { attachment, noop } = (await uploaded.json()) as { attachment: AttachmentJson; noop: boolean };
      expect(noop).toBe(false);
      expect(attachment).toMatchObject({
        name: 'greeting.txt',
        key: lease.key,
        namespace: 'default',
        size: content.length,
        content_type: 'text/plain',
        extension: 'txt',
        sha256: sha256Hex(content),
      });
      expect(attachment.crc32).toMatch(/^[0-9a-f]{8}$/);
      expect(Number.isInteger(attachment.created_at_unix)).toBe(true);
      expect(uploaded.headers.get('X-Attachment-ID')).toBe(attachment.id);
      expect(uploaded.headers.get('X-Fencing-Token')).toBe(String(lease.fencing_token));

      expect(await http.namesUnderLease(lease)).toEqual(['greeting.txt']);
      const publicList = await http.get('/attachments', { key: lease.key });
      expect(await publicList.json()).toEqual({ namespace: 'default', key: lease.key, attachments: [] });
      const publicFlag = await http.get('/attachments', { key: lease.key, public: 'true' }, { headers: leaseHeaders(lease) });
      expect(((await publicFlag.json()) as { attachments: unknown[] }).attachments).toEqual([]);

      const released = await http.release(lease);
      expect(released.status).toBe(200);
      expect(await released.json()).toEqual({ released: true });

      expect(await http.committed(lease.key)).toEqual([attachment]);
      const byName = await http.get('/attachment', { key: lease.key, name: 'greeting.txt' });
      expect(byName.status).toBe(200);
      expect(await byName.text()).toBe(content);
      const byId = await http.get('/attachment', { id: attachment.id });
      expect(await byId.text()).toBe(content);
    });

    it('lets the lease read its staged bytes with private caching, while the public sees nothing yet', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      await http.uploadRaw(lease, 'notes.bin', bytes('staged!')); // a byte body: fetch sends no Content-Type
      const read = await http.get('/attachment', { key: lease.key, name: 'notes.bin' }, { headers: leaseHeaders(lease) });
      expect(await read.text()).toBe('staged!');
      expect(read.headers.get('Cache-Control')).toBe('private, no-cache');
      expect(read.headers.get('Content-Type')).toBe('application/octet-stream');
      expect(read.headers.get('Content-Disposition')).toMatch(/^attachment; /);
      await expectError(await http.get('/attachment', { key: lease.key, name: 'notes.bin' }), 'attachment_not_found');
    });

    it('rolls back on release with rollback: staged uploads vanish and their blobs are deleted', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey());
      await http.uploadRaw(lease, 'gone.txt', 'bye');
      expect((await http.release(lease, true)).status).toBe(200);
      expect(await http.committed(lease.key)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);
    });

    it('deletes one attachment and then all attachments under the lease, staged until release', async () => {
      const { http } = context;
      const first = await http.acquire(freshKey());
      for (const [name, content] of [['a', '1'], ['b', '2'], ['c', '3']] as const) await http.uploadRaw(first, name, content);
      await http.release(first);

      const lease = await http.acquire(first.key);
      const del = (path: string, query: Record<string, string>) =>
        http.get(path, { key: lease.key, ...query }, { method: 'DELETE', headers: leaseHeaders(lease) });
      expect(await (await del('/attachment', { name: 'a' })).json()).toEqual({ deleted: true });
      expect(await (await del('/attachment', { name: 'a' })).json()).toEqual({ deleted: false });
      expect(await http.namesUnderLease(lease)).toEqual(['b', 'c']);
      expect((await http.committed(lease.key)).map((a) => a.name)).toEqual(['a', 'b', 'c']);
      expect(await (await del('/attachments', {})).json()).toEqual({ deleted: 2 });
      expect(await http.namesUnderLease(lease)).toEqual([]);
      await http.release(lease);
      expect(await http.committed(lease.key)).toEqual([]);
    });

    it('overwrites a name under a new lease and keeps its attachment id', async () => {
      const { http } = context;
      const first = await http.acquire(freshKey());
      const original = (await (await http.uploadRaw(first, 'doc.txt', 'v1')).json()) as { attachment: AttachmentJson };
      await http.release(first);
      const second = await http.acquire(first.key);
      const replaced = (await (await http.uploadRaw(second, 'doc.txt', 'version 2')).json()) as { attachment: AttachmentJson };
      expect(replaced.attachment.id).toBe(original.attachment.id);
      await http.release(second);
      expect(await (await http.get('/attachment', { id: original.attachment.id })).text()).toBe('version 2');
    });
  });
}
