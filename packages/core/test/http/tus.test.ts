// The tus routes on core's bare handler (@hono/node-server) over memory
// ports, in plaintext and with encryption at rest.
import { describe, expect, it } from 'vitest';
import { describeTusProtocol, patternBytes, tusClient, type TusMountOptions, type TusServer } from '../../../testing/src/tus-suite.js';
import type { EncryptionOptions } from '../../src/crypto.js';
import { memoryBlobs } from '../../src/memory/blobs.js';
import { memoryMetadata } from '../../src/memory/metadata.js';
import { createAttachmentStore } from '../../src/store.js';
import { mountHandler } from './server.js';

const encryption: EncryptionOptions = { keys: { k1: new Uint8Array(32).fill(9) }, activeKeyId: 'k1' };

async function memoryServer(options: TusMountOptions & { encryption?: EncryptionOptions }): Promise<TusServer> {
  let skew = 0;
  const blobs = memoryBlobs();
  const store = createAttachmentStore({ metadata: memoryMetadata(), blobs, now: () => Date.now() + skew, ...options });
  const mounted = await mountHandler({ store });
  return {
    baseUrl: mounted.baseUrl,
    store,
    blobs,
    advance: (ms) => void (skew += ms),
    close: async () => {
      await mounted.close();
      await store.close();
    },
  };
}

describeTusProtocol('core handler on memory ports', (options) => memoryServer(options));
describeTusProtocol('core handler on memory ports, encrypted at rest', (options) => memoryServer({ ...options, encryption }));

describe('tus with encryption at rest', () => {
  it('stores an unfinished upload’s parts encrypted, never as the plaintext', async () => {
    const server = await memoryServer({ encryption });
    try {
      const client = tusClient(server.baseUrl);
      const bytes = patternBytes(200_000, 4);
      const url = await client.createUrl(bytes.byteLength);
      expect((await client.patch(url, 0, bytes.subarray(0, 100_000))).status).toBe(204);
      const parts: Uint8Array[] = [];
      for await (const blob of server.blobs.list('uploads/')) {
        parts.push(new Uint8Array(await new Response(await server.blobs.get(blob.path)).arrayBuffer()));
      }
      expect(parts).toHaveLength(1);
      const stored = Buffer.from(parts[0]!);
      expect(stored.byteLength).toBeGreaterThan(100_000);
      expect(stored.includes(Buffer.from(bytes.subarray(1_000, 1_064)))).toBe(false);
    } finally {
      await server.close();
    }
  });
});

describe('tus sweep', () => {
  it('deletes part blobs whose upload row is gone, once older than the orphan grace, and no younger ones', async () => {
    let skew = 0;
    const metadata = memoryMetadata();
    const blobs = memoryBlobs();
    const store = createAttachmentStore({ metadata, blobs, now: () => Date.now() + skew, orphanGraceSeconds: 60 });
    try {
      const { uploadId } = await store.uploads.create({ length: 10, name: 'a.bin' });
      await store.uploads.append(uploadId, { offset: 0, body: new Response(patternBytes(4)).body });
      // As a crash between forgetting the row and deleting its parts would leave it.
      await metadata.transaction((tx) => tx.deleteUpload(uploadId));
      const partsLeft = async () => {
        let count = 0;
        for await (const _blob of blobs.list('uploads/')) count += 1;
        return count;
      };
      expect((await store.sweep()).uploadsDeleted).toBe(0);
      expect(await partsLeft()).toBe(1);
      skew += 61_000;
      expect((await store.sweep()).uploadsDeleted).toBe(1);
      expect(await partsLeft()).toBe(0);
    } finally {
      await store.close();
    }
  });
});

describe('tus and the authorize hook', () => {
  it('asks the hook (action upload) with the upload’s namespace and key on every request, and a refusal is 401', async () => {
    const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs() });
    const seen: string[] = [];
    let allow = true;
    const mounted = await mountHandler({
      store,
      authorize: ({ request, action, namespace, key }) => {
        seen.push(`${request.method} ${action} ${namespace ?? '-'} ${key ?? '-'}`);
        return allow;
      },
    });
    try {
      const client = tusClient(mounted.baseUrl);
      const lease = await store.acquire({ key: 'hooked/key', owner: 'test', ttlSeconds: 60 });
      const url = await client.createUrl(4, {
        query: '?key=hooked/key',
        headers: { 'X-Lease-ID': lease.leaseId, 'X-Txn-ID': lease.txnId, 'X-Fencing-Token': String(lease.fencingToken) },
      });
      await client.createUrl(4);
      allow = false;
      const refused = await client.patch(url, 0, patternBytes(4));
      expect(refused.status).toBe(401);
      expect(await refused.json()).toMatchObject({ error: 'unauthorized' });
      expect(seen).toEqual(['POST upload default hooked/key', 'POST upload - -', 'PATCH upload default hooked/key']);
      allow = true;
      expect(await client.offset(url)).toBe(0);
    } finally {
      await mounted.close();
      await store.close();
    }
  });
});
