// Key rotation (`store.rotateKeys`), as a specification every persistent
// stack runs: objects written under an old key, or in plaintext, end up
// under the active key, byte for byte the same to clients, while readers,
// deletes and crashes happen around it.
import {
  createAttachmentStore,
  type AttachmentRow,
  type AttachmentStore,
  type AttachmentStoreOptions,
  type CrashPoint,
  type EncryptionOptions,
  type KeyRotationProgress,
} from '@attache/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineFixture, EnginePorts } from './engine-suite.js';
import { expectCode, readAll } from './expectations.js';

const K1 = new Uint8Array(32).fill(0x11);
const K2 = new Uint8Array(32).fill(0x22);
const OLD_KEY: EncryptionOptions = { keys: { k1: K1 }, activeKeyId: 'k1' };
const BOTH_KEYS: EncryptionOptions = { keys: { k1: K1, k2: K2 }, activeKeyId: 'k2' };
const NEW_KEY: EncryptionOptions = { keys: { k2: K2 }, activeKeyId: 'k2' };

const KEY = 'orders/1';
const encoder = new TextEncoder();
/** A text no ciphertext contains by chance: the plaintext-on-disk tests look for it. */
const MARKER = 'PLAINTEXT-MARKER-4f1c9a-attache';

/** Deterministic bytes that are not all alike, so swapped or misplaced segments show. */
function pattern(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed * 2654435761;
  for (let index = 0; index < size; index++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

/**
 * The multi-segment object: larger than one chunk of decrypted output (four
 * 64 KiB segments), so its progress is reported while it streams.
 */
const LARGE_SIZE = 600_000;

/** What the seeded store holds: a key with a multi-segment, an empty and a small object, plus two documents. */
const KEYED = new Map<string, Uint8Array>([
  ['a.bin', pattern(LARGE_SIZE, 1)],
  ['empty.txt', new Uint8Array(0)],
  ['note.txt', encoder.encode(`${MARKER} in a keyed attachment`)],
]);
const DOCUMENTS = [pattern(70_000, 2), encoder.encode(`${MARKER} in a document`)];

/** Every committed row (a key id no row has matches them all). */
async function committedRows(ports: EnginePorts): Promise<AttachmentRow[]> {
  return ports.metadata.transaction((tx) =>
    tx.listNotOnKey({ keyId: 'no-such-key', includePlaintext: true, afterVersionId: null, limit: 10_000 }),
  );
}

async function blobBytes(ports: EnginePorts, path: string): Promise<Uint8Array> {
  const stream = await ports.blobs.get(path);
  if (!stream) throw new Error(`blob ${path} is missing`);
  return readAll(stream);
}

/** The key id an encrypted blob's header names, or null when the blob has no header (plaintext). */
function headerKeyId(bytes: Uint8Array): string | null {
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic !== 'ATCE' || bytes[4] !== 1) return null;
  return new TextDecoder().decode(bytes.subarray(6, 6 + bytes[5]!));
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let at = 0; at + needle.byteLength <= haystack.byteLength; at++) {
    for (let index = 0; index < needle.byteLength; index++) if (haystack[at + index] !== needle[index]) continue outer;
    return true;
  }
  return false;
}

export function describeKeyRotation(name: string, fixture: EngineFixture & { reopen: () => Promise<EnginePorts> }): void {
  describe(`key rotation: ${name}`, () => {
    let open: AttachmentStore[] = [];
    let documentIds: string[] = [];

    afterEach(async () => {
      for (const store of open) await store.close();
      open = [];
    });

    /** A store over the same storage, as a restarted process with these keys would open it. */
    const storeWith = async (
      encryption: EncryptionOptions | undefined,
      extra: Partial<AttachmentStoreOptions> = {},
      ports?: EnginePorts,
    ): Promise<AttachmentStore> => {
      const store = createAttachmentStore({
        ...(ports ?? (await fixture.reopen())),
        ...(encryption === undefined ? {} : { encryption }),
        // Orphans and garbage go at the next sweep: the tests look at storage right after it.
        orphanGraceSeconds: 0,
        ...extra,
      });
      open.push(store);
      return store;
    };
    const closeStore = async (store: AttachmentStore) => {
      open = open.filter((entry) => entry !== store);
      await store.close();
    };
    /** Ports of their own for looking at storage; closed by the caller. */
    const inspect = async <T>(look: (ports: EnginePorts) => Promise<T>): Promise<T> => {
      const ports = await fixture.reopen();
      try {
        return await look(ports);
      } finally {
        await ports.blobs.close?.();
        await ports.metadata.close();
      }
    };

    /** Fresh storage holding KEYED and DOCUMENTS, written with `encryption` (undefined: plaintext). */
    const seed = async (encryption: EncryptionOptions | undefined): Promise<void> => {
      const store = await storeWith(encryption, {}, await fixture.create());
      const lease = await store.acquire({ key: KEY, ttlSeconds: 30, owner: 'seed' });
      for (const [entryName, body] of KEYED) await lease.attach({ name: entryName, body });
      await lease.release();
      const documents = await store.createDocuments(DOCUMENTS.map((body, index) => ({ name: `doc-${index}.bin`, body })));
      documentIds = documents.map((document) => document.id);
      await store.settled();
      await closeStore(store);
    };

    /** Every object as a client sees it: metadata and bytes, whole and in a range across a segment boundary. */
    const clientView = async (store: AttachmentStore) => {
      const view: unknown[] = [];
      for (const attachment of await store.listAttachments({ key: KEY })) {
        const whole = await store.openAttachment({ key: KEY, name: attachment.name });
        const ranged =
          attachment.size > 70_000 ? await store.openAttachment({ key: KEY, name: attachment.name }, { range: { start: 65_000, end: 70_000 } }) : undefined;
        view.push({ attachment, bytes: await readAll(whole.body), range: ranged && (await readAll(ranged.body)) });
      }
      for (const id of documentIds) {
        const document = await store.openAttachment({ id });
        view.push({ attachment: document.attachment, bytes: await readAll(document.body) });
      }
      return view;
    };

    it('re-encrypts every attachment and document under an old key to the active key: rows and blob headers name it', async () => {
      await seed(OLD_KEY);
      const store = await storeWith(BOTH_KEYS);
      const report = await store.rotateKeys();
      expect(report).toMatchObject({ activeKeyId: 'k2', totalObjects: 5, rotated: 5, superseded: 0, failed: [], remaining: 0 });
      await store.sweep();
      await closeStore(store);
      await inspect(async (ports) => {
        const rows = await committedRows(ports);
        expect(rows).toHaveLength(5);
        for (const row of rows) {
          expect(row.keyId).toBe('k2');
          expect(headerKeyId(await blobBytes(ports, row.blobPath))).toBe('k2');
        }
        // The old blobs went at the sweep: one blob per object is left.
        const paths: string[] = [];
        for await (const blob of ports.blobs.list('state/')) paths.push(blob.path);
        expect(paths.sort()).toEqual(rows.map((row) => row.blobPath).sort());
      });
    });

    it('leaves what clients see unchanged: bytes, ranges, size, CRC-32, SHA-256 and timestamps', async () => {
      await seed(OLD_KEY);
      const reader = await storeWith(OLD_KEY);
      const before = await clientView(reader);
      await closeStore(reader);
      const store = await storeWith(BOTH_KEYS);
      await store.rotateKeys();
      expect(await clientView(store)).toEqual(before);
      expect((before[0] as { bytes: Uint8Array }).bytes).toEqual(KEYED.get('a.bin'));
    });

    it('reads everything with the old key removed once the rotation reports nothing remaining', async () => {
      await seed(OLD_KEY);
      const rotator = await storeWith(BOTH_KEYS);
      expect((await rotator.rotateKeys()).remaining).toBe(0);
      await rotator.sweep();
      await closeStore(rotator);
      const store = await storeWith(NEW_KEY);
      const view = (await clientView(store)) as Array<{ attachment: { name: string }; bytes: Uint8Array }>;
      expect(view.map((entry) => entry.bytes)).toEqual([...KEYED.values(), ...DOCUMENTS]);
    });

    it('encrypts objects stored in plaintext too, so no blob holds their bytes after a sweep', async () => {
      await seed(undefined);
      const marker = encoder.encode(MARKER);
      const plainBlobs = await inspect(async (ports) =>
        Promise.all((await committedRows(ports)).map(async (row) => blobBytes(ports, row.blobPath))),
      );
      // The check below can fail: before the rotation the marker is there to find.
      expect(plainBlobs.filter((bytes) => contains(bytes, marker))).toHaveLength(2);
      const store = await storeWith(NEW_KEY);
      expect(await store.rotateKeys()).toMatchObject({ totalObjects: 5, rotated: 5, remaining: 0 });
      await store.sweep();
      await closeStore(store);
      await inspect(async (ports) => {
        for await (const blob of ports.blobs.list('')) {
          const bytes = await blobBytes(ports, blob.path);
          expect(contains(bytes, marker), blob.path).toBe(false);
          if (blob.path.startsWith('state/')) expect(headerKeyId(bytes), blob.path).toBe('k2');
        }
      });
      const reader = await storeWith(NEW_KEY);
      expect(await readAll((await reader.openAttachment({ key: KEY, name: 'note.txt' })).body)).toEqual(KEYED.get('note.txt'));
    });

    it('leaves plaintext objects as they are with encryptPlaintext: false, and rotates the rest', async () => {
      await seed(undefined);
      const writer = await storeWith(OLD_KEY);
      const lease = await writer.acquire({ key: 'later', ttlSeconds: 30, owner: 'test' });
      await lease.attach({ name: 'encrypted.bin', body: pattern(1000, 3) });
      await lease.release();
      await writer.settled();
      await closeStore(writer);
      const store = await storeWith(BOTH_KEYS);
      expect(await store.rotateKeys({ encryptPlaintext: false })).toMatchObject({ totalObjects: 1, rotated: 1, remaining: 0 });
      await closeStore(store);
      await inspect(async (ports) => {
        const keyIds = (await committedRows(ports)).map((row) => row.keyId);
        expect(keyIds.sort()).toEqual(['k2', null, null, null, null, null]);
      });
    });

    it('gives a reader that is streaming an object while it is rotated its exact bytes', async () => {
      await seed(OLD_KEY);
      const store = await storeWith(BOTH_KEYS);
      const whole = await store.openAttachment({ key: KEY, name: 'a.bin' });
      const ranged = await store.openAttachment({ key: KEY, name: 'a.bin' }, { range: { start: 100_000, end: 199_999 } });
      const reader = whole.body.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      expect((await store.rotateKeys()).rotated).toBe(5);
      const rest: Uint8Array[] = [first.value!];
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest.push(chunk.value);
      expect(Buffer.concat(rest)).toEqual(Buffer.from(KEYED.get('a.bin')!));
      expect(await readAll(ranged.body)).toEqual(KEYED.get('a.bin')!.subarray(100_000, 200_000));
    });

    it('lets a delete committed while an object is re-encrypted win: the object stays deleted, its new blob is removed', async () => {
      await seed(OLD_KEY);
      const store = await storeWith(BOTH_KEYS);
      let deleted = false;
      const report = await store.rotateKeys({
        // Mid-way through a.bin (written first, so the first object in version order): delete it and commit.
        onProgress: async (progress) => {
          if (deleted || progress.doneObjects > 0 || progress.doneBytes === 0) return;
          deleted = true;
          const lease = await store.acquire({ key: KEY, ttlSeconds: 30, owner: 'deleter' });
          await lease.delete({ name: 'a.bin' });
          await lease.release();
        },
        batchSize: 2,
      });
      expect(deleted).toBe(true);
      expect(report).toMatchObject({ rotated: 4, superseded: 1 });
      expect(report.failed).toEqual([]);
      expect(report.remaining).toBe(0);
      await expectCode(store.getAttachment({ key: KEY, name: 'a.bin' }), 'attachment_not_found');
      await store.settled();
      await store.sweep();
      await closeStore(store);
      await inspect(async (ports) => {
        const rows = await committedRows(ports);
        expect(rows).toHaveLength(4);
        const paths: string[] = [];
        for await (const blob of ports.blobs.list('state/')) paths.push(blob.path);
        expect(paths.sort()).toEqual(rows.map((row) => row.blobPath).sort());
      });
    });

    it('lets an overwrite committed while an object is re-encrypted win: readers get the new bytes, under the active key', async () => {
      await seed(OLD_KEY);
      const store = await storeWith(BOTH_KEYS);
      const replacement = pattern(150_000, 9);
      let overwritten = false;
      const report = await store.rotateKeys({
        onProgress: async (progress) => {
          if (overwritten || progress.doneObjects > 0 || progress.doneBytes === 0) return;
          overwritten = true;
          const lease = await store.acquire({ key: KEY, ttlSeconds: 30, owner: 'writer' });
          await lease.attach({ name: 'a.bin', body: replacement });
          await lease.release();
        },
      });
      expect(overwritten).toBe(true);
      expect(report).toMatchObject({ rotated: 4, superseded: 1, failed: [], remaining: 0 });
      expect(await readAll((await store.openAttachment({ key: KEY, name: 'a.bin' })).body)).toEqual(replacement);
      await store.settled();
      await store.sweep();
      await closeStore(store);
      await inspect(async (ports) => {
        const rows = await committedRows(ports);
        expect(rows.map((row) => row.keyId)).toEqual(['k2', 'k2', 'k2', 'k2', 'k2']);
        const paths: string[] = [];
        for await (const blob of ports.blobs.list('state/')) paths.push(blob.path);
        expect(paths.sort()).toEqual(rows.map((row) => row.blobPath).sort());
      });
    });

    it('reports progress: the totals first, then objects and bytes done, ending at the totals', async () => {
      await seed(OLD_KEY);
      const store = await storeWith(BOTH_KEYS);
      const seen: KeyRotationProgress[] = [];
      await store.rotateKeys({ onProgress: (progress) => void seen.push(progress) });
      const totalBytes = [...KEYED.values(), ...DOCUMENTS].reduce((sum, bytes) => sum + bytes.byteLength, 0);
      expect(seen[0]).toEqual({ activeKeyId: 'k2', totalObjects: 5, totalBytes, doneObjects: 0, doneBytes: 0 });
      expect(seen.at(-1)).toEqual({ activeKeyId: 'k2', totalObjects: 5, totalBytes, doneObjects: 5, doneBytes: totalBytes });
      // Bytes are reported while a large object streams, not only when it is done.
      expect(seen.some((progress) => progress.doneBytes > 0 && progress.doneBytes < LARGE_SIZE)).toBe(true);
      for (let index = 1; index < seen.length; index++) {
        expect(seen[index]!.doneBytes).toBeGreaterThanOrEqual(seen[index - 1]!.doneBytes);
        expect(seen[index]!.doneObjects).toBeGreaterThanOrEqual(seen[index - 1]!.doneObjects);
      }
    });

    for (const point of ['rotate.after-blob', 'rotate.after-row'] as const satisfies readonly CrashPoint[]) {
      it(`resumes after a crash at ${point}: a sweep removes what the crash left, a rerun finishes`, async () => {
        await seed(OLD_KEY);
        const crash = new Error(`simulated crash at ${point}`);
        let reached = 0;
        const crashing = await storeWith(BOTH_KEYS, {
          // The second object dies at the point: one is done, one half-done, three untouched.
          onCrashPoint: (at) => {
            if (at === point && ++reached === 2) throw crash;
          },
        });
        await expect(crashing.rotateKeys()).rejects.toBe(crash);
        await closeStore(crashing);
        const restarted = await storeWith(BOTH_KEYS);
        await restarted.sweep();
        const report = await restarted.rotateKeys();
        expect(report).toMatchObject({ totalObjects: point === 'rotate.after-blob' ? 4 : 3, failed: [], remaining: 0 });
        expect(report.rotated).toBe(report.totalObjects);
        await restarted.sweep();
        const view = (await clientView(restarted)) as Array<{ bytes: Uint8Array }>;
        expect(view.map((entry) => entry.bytes)).toEqual([...KEYED.values(), ...DOCUMENTS]);
        await closeStore(restarted);
        await inspect(async (ports) => {
          const rows = await committedRows(ports);
          expect(rows.map((row) => row.keyId)).toEqual(['k2', 'k2', 'k2', 'k2', 'k2']);
          const paths: string[] = [];
          for await (const blob of ports.blobs.list('state/')) paths.push(blob.path);
          expect(paths.sort()).toEqual(rows.map((row) => row.blobPath).sort());
        });
      });
    }

    it('stops when its signal aborts mid-object, leaving what is done done and nothing half-written; a rerun finishes', async () => {
      await seed(OLD_KEY);
      const store = await storeWith(BOTH_KEYS);
      const abort = new AbortController();
      const reason = new Error('stop');
      const keyedBytes = [...KEYED.values()].reduce((sum, bytes) => sum + bytes.byteLength, 0);
      const stopped = store.rotateKeys({
        signal: abort.signal,
        // Part-way through the first document (70 000 bytes), after the three keyed objects (in version order).
        onProgress: (progress) => {
          if (progress.doneObjects === 3 && progress.doneBytes > keyedBytes) abort.abort(reason);
        },
      });
      await expect(stopped).rejects.toBe(reason);
      await store.sweep();
      await closeStore(store);
      await inspect(async (ports) => {
        const rows = await committedRows(ports);
        expect(rows.filter((row) => row.keyId === 'k2')).toHaveLength(3);
        const paths: string[] = [];
        for await (const blob of ports.blobs.list('state/')) paths.push(blob.path);
        expect(paths.sort()).toEqual(rows.map((row) => row.blobPath).sort());
      });
      const rerun = await storeWith(BOTH_KEYS);
      expect(await rerun.rotateKeys()).toMatchObject({ totalObjects: 2, rotated: 2, remaining: 0 });
    });

    it('reports objects under a key it does not hold as failed (key_unavailable), rotates the rest and counts them as remaining', async () => {
      await seed(OLD_KEY);
      const writer = await storeWith({ keys: { k3: K2.map((byte) => byte ^ 0xff) }, activeKeyId: 'k3' });
      const lease = await writer.acquire({ key: 'other', ttlSeconds: 30, owner: 'test' });
      await lease.attach({ name: 'x.bin', body: pattern(10, 4) });
      await lease.release();
      await writer.settled();
      await closeStore(writer);
      const store = await storeWith({ keys: { k2: K2, k3: K2.map((byte) => byte ^ 0xff) }, activeKeyId: 'k3' });
      const report = await store.rotateKeys();
      expect(report).toMatchObject({ totalObjects: 5, rotated: 0, remaining: 5 });
      expect(report.failed).toHaveLength(5);
      expect(new Set(report.failed.map((failure) => `${failure.code} ${failure.keyId}`))).toEqual(new Set(['key_unavailable k1']));
      // Nothing half-written is left behind.
      await store.sweep();
      await closeStore(store);
      await inspect(async (ports) => {
        const rows = await committedRows(ports);
        const paths: string[] = [];
        for await (const blob of ports.blobs.list('state/')) paths.push(blob.path);
        expect(paths.sort()).toEqual(rows.map((row) => row.blobPath).sort());
      });
    });

    it('does nothing on a rerun once everything is under the active key', async () => {
      await seed(NEW_KEY);
      const store = await storeWith(NEW_KEY);
      expect(await store.rotateKeys()).toEqual({
        activeKeyId: 'k2',
        totalObjects: 0,
        totalBytes: 0,
        doneObjects: 0,
        doneBytes: 0,
        rotated: 0,
        rotatedBytes: 0,
        superseded: 0,
        failed: [],
        remaining: 0,
      });
    });

    it('refuses without encryption configured (invalid_argument)', async () => {
      await seed(undefined);
      const plain = await storeWith(undefined);
      await expectCode(plain.rotateKeys(), 'invalid_argument');
      await closeStore(plain);
      const keyed = await storeWith(NEW_KEY);
      await expectCode(keyed.rotateKeys({ batchSize: 0 }), 'invalid_argument');
    });
  });
}
