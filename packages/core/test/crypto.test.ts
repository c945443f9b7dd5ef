// Encryption at rest, on its own: the segment format, range reads that fetch
// only the segments they need, and tamper evidence (an altered object errors
// the stream; it never yields wrong bytes and never ends cleanly).
import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { defaultAesGcm, webCryptoGcm } from '../src/aes-gcm.js';
import { encryptedSize, Keyring, SEGMENT_SIZE } from '../src/crypto.js';
import { AttacheError } from '../src/errors.js';
import type { ByteRange } from '../src/ports.js';

const SEG = SEGMENT_SIZE;
const TAG = 16;
const VERSION = '0190b6e0-0000-7000-8000-000000000001';
const OTHER_VERSION = '0190b6e0-0000-7000-8000-000000000002';

const keyBytes = (fill: number) => new Uint8Array(32).fill(fill);
const keyring = (keys: Record<string, Uint8Array> = { k1: keyBytes(1) }, activeKeyId = 'k1') => new Keyring({ keys, activeKeyId });

/** Deterministic bytes that differ from segment to segment (a swap must show). */
function plaintextOf(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + Math.floor(i / 251)) & 0xff;
  return bytes;
}

/** A stream of `bytes` in chunks of `chunkSize` (odd sizes cross segment boundaries). */
function streamOf(bytes: Uint8Array, chunkSize = 1000): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (at >= bytes.byteLength) return controller.close();
        controller.enqueue(bytes.slice(at, at + chunkSize));
        at += chunkSize;
      },
    },
    { highWaterMark: 0 },
  );
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return concat(chunks);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

async function encrypt(ring: Keyring, plaintext: Uint8Array, versionId = VERSION, chunkSize = 1000): Promise<Uint8Array> {
  return collect(streamOf(plaintext, chunkSize).pipeThrough(ring.encrypt(versionId)));
}

/** A blob store's `get` over `stored`, serving ranges in 777-byte chunks and recording what was asked. */
function readerOver(stored: Uint8Array) {
  const requested: (ByteRange | 'all')[] = [];
  const read = async (range?: ByteRange) => {
    requested.push(range ?? 'all');
    const slice = range ? stored.slice(range.start, Math.min(range.end + 1, stored.byteLength)) : stored.slice();
    return streamOf(slice, 777);
  };
  const bytesRead = () =>
    requested.reduce((n, r) => n + (r === 'all' ? stored.byteLength : Math.min(r.end + 1, stored.byteLength) - r.start), 0);
  return { read, requested, bytesRead };
}

/** Reads a stream to its end or its error; returns what it yielded and how it ended. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<{ yielded: Uint8Array; error: unknown }> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { yielded: concat(chunks), error: undefined };
      chunks.push(value);
    }
  } catch (error) {
    return { yielded: concat(chunks), error };
  }
}

/** Byte equality without a deep-equal walk over every element (slow on MiBs). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

const isPrefix = (prefix: Uint8Array, of: Uint8Array) =>
  prefix.byteLength <= of.byteLength && Buffer.compare(prefix, of.subarray(0, prefix.byteLength)) === 0;

describe('encryption at rest', () => {
  // Every behaviour holds for both AES-GCM implementations: node:crypto (the
  // default on Node) and WebCrypto (where a runtime has no node:crypto).
  for (const gcm of [defaultAesGcm(), webCryptoGcm]) {
    describe(`with AES-GCM by ${gcm.name}`, () => {
      const keyring = (keys: Record<string, Uint8Array> = { k1: keyBytes(1) }, activeKeyId = 'k1') => new Keyring({ keys, activeKeyId }, gcm);

      describe('round trip', () => {
        for (const size of [0, 1, SEG - 1, SEG, SEG + 1, 1024 * 1024]) {
          it(`returns the ${size} bytes it was given, stored as header + bytes + one tag per 64 KiB segment`, async () => {
            const ring = keyring();
            const plaintext = plaintextOf(size);
            const stored = await encrypt(ring, plaintext);
            expect(stored.byteLength).toBe(encryptedSize(size, 'k1'));
            expect(stored.byteLength).toBe(4 + 2 + 2 + 16 + size + Math.max(1, Math.ceil(size / SEG)) * TAG);
            const { read } = readerOver(stored);
            const opened = await ring.open({ versionId: VERSION, keyId: 'k1', size }, read);
            expectSameBytes(await collect(opened!), plaintext);
          });
        }

        it('gives the same plaintext whatever the chunking of the upload (one large chunk, single bytes)', async () => {
          const ring = keyring();
          const plaintext = plaintextOf(SEG * 2 + 3);
          for (const chunkSize of [plaintext.byteLength, 1, SEG, SEG + 1]) {
            const stored = await encrypt(ring, plaintext, VERSION, chunkSize);
            const opened = await ring.open({ versionId: VERSION, keyId: 'k1', size: plaintext.byteLength }, readerOver(stored).read);
            expectSameBytes(await collect(opened!), plaintext);
          }
        });

        it('stores no plaintext: a marker never appears in the ciphertext', async () => {
          const marker = new TextEncoder().encode('MARKER-a8f3c1-PLAINTEXT');
          const plaintext = concat(Array.from({ length: 5000 }, () => marker));
          const stored = await encrypt(keyring(), plaintext);
          const text = new TextDecoder('latin1').decode(stored);
          expect(text.includes('MARKER-a8f3c1')).toBe(false);
        });

        it('encrypts the same bytes differently every time (a random salt per object)', async () => {
          const ring = keyring();
          const plaintext = plaintextOf(100);
          const first = await encrypt(ring, plaintext);
          const second = await encrypt(ring, plaintext);
          expect(Buffer.compare(first, second)).not.toBe(0);
        });

        it('reads objects of every key it holds; new writes use the active key', async () => {
          const old = keyring({ old: keyBytes(7) }, 'old');
          const plaintext = plaintextOf(300);
          const stored = await encrypt(old, plaintext);
          const both = keyring({ old: keyBytes(7), k2: keyBytes(9) }, 'k2');
          const opened = await both.open({ versionId: VERSION, keyId: 'old', size: 300 }, readerOver(stored).read);
          expectSameBytes(await collect(opened!), plaintext);
          const fresh = await encrypt(both, plaintext);
          expect(new TextDecoder().decode(fresh.subarray(6, 8))).toBe('k2');
        });

        it('answers undefined when the blob does not exist', async () => {
          const ring = keyring();
          expect(await ring.open({ versionId: VERSION, keyId: 'k1', size: 10 }, async () => undefined)).toBeUndefined();
          expect(await ring.open({ versionId: VERSION, keyId: 'k1', size: 3 * SEG }, async () => undefined, { start: 2 * SEG, end: 2 * SEG })).toBeUndefined();
        });
      });

      describe('ranges', () => {
        const size = 3 * SEG + 100;
        const plaintext = plaintextOf(size);
        const edges: [number, number][] = [
          [0, 0],
          [0, SEG - 1],
          [0, SEG],
          [SEG - 1, SEG - 1],
          [SEG - 1, SEG],
          [SEG, SEG],
          [SEG, 2 * SEG - 1],
          [SEG + 1, 2 * SEG + 1],
          [2 * SEG - 1, 3 * SEG],
          [3 * SEG, size - 1],
          [size - 1, size - 1],
          [1, size - 2],
          [0, size - 1],
        ];
        for (const [start, end] of edges) {
          it(`yields exactly bytes ${start}-${end}, reading only the segments that cover them`, async () => {
            const ring = keyring();
            const stored = await encrypt(ring, plaintext);
            const reader = readerOver(stored);
            const opened = await ring.open({ versionId: VERSION, keyId: 'k1', size }, reader.read, { start, end });
            expectSameBytes(await collect(opened!), plaintext.slice(start, end + 1));
            const covered = Math.floor(end / SEG) - Math.floor(start / SEG) + 1;
            const header = encryptedSize(0, 'k1') - TAG;
            expect(reader.bytesRead()).toBeLessThanOrEqual(header + covered * (SEG + TAG));
            expect(reader.requested.length).toBe(start < SEG ? 1 : 2);
          });
        }

        it('reads one byte of the last segment of a 1 MiB object without touching the others', async () => {
          const big = plaintextOf(1024 * 1024);
          const ring = keyring();
          const stored = await encrypt(ring, big);
          const reader = readerOver(stored);
          const opened = await ring.open({ versionId: VERSION, keyId: 'k1', size: big.byteLength }, reader.read, { start: big.byteLength - 1, end: big.byteLength - 1 });
          expectSameBytes(await collect(opened!), big.slice(-1));
          expect(reader.bytesRead()).toBeLessThan(SEG + 100);
        });
      });

      describe('tamper evidence', () => {
        const size = 3 * SEG + 100;
        const plaintext = plaintextOf(size);
        const object = { versionId: VERSION, keyId: 'k1', size };
        const segmentAt = (index: number) => encryptedSize(0, 'k1') - TAG + index * (SEG + TAG);

        /** Opens a tampered copy and expects an error with code `decryption_failed`, after at most a correct prefix. */
        async function expectTamperDetected(
          tamper: (stored: Uint8Array) => Uint8Array,
          options: { ring?: Keyring; readRing?: Keyring; versionId?: string; range?: ByteRange } = {},
        ) {
          const stored = await encrypt(options.ring ?? keyring(), plaintext);
          const reader = readerOver(tamper(stored.slice()));
          const opened = await (options.readRing ?? keyring()).open({ ...object, versionId: options.versionId ?? VERSION }, reader.read, options.range);
          const { yielded, error } = await drain(opened!);
          expect(error).toBeInstanceOf(AttacheError);
          expect((error as AttacheError).code).toBe('decryption_failed');
          const expected = options.range ? plaintext.slice(options.range.start, options.range.end + 1) : plaintext;
          expect(isPrefix(yielded, expected)).toBe(true);
          return yielded;
        }

        const flipAt = (offset: number) => (stored: Uint8Array) => {
          stored[offset]! ^= 0x01;
          return stored;
        };

        it('errors on a flipped byte in a segment, after yielding only the intact segments before it', async () => {
          const yielded = await expectTamperDetected(flipAt(segmentAt(2) + 10));
          expect(yielded.byteLength).toBe(2 * SEG);
        });

        it('errors on a flipped byte in a tag', async () => {
          await expectTamperDetected(flipAt(segmentAt(1) - 1));
        });

        it('errors on a flipped byte in the header (magic, format version, key id, salt)', async () => {
          for (const offset of [0, 4, 6, 10]) await expectTamperDetected(flipAt(offset));
        });

        it('errors on a flipped byte read through a range', async () => {
          await expectTamperDetected(flipAt(segmentAt(2) + 5), { range: { start: 2 * SEG, end: 2 * SEG + 10 } });
        });

        it('errors when the final segment is truncated, by one byte or entirely', async () => {
          await expectTamperDetected((stored) => stored.slice(0, stored.byteLength - 1));
          await expectTamperDetected((stored) => stored.slice(0, segmentAt(3)));
          await expectTamperDetected((stored) => stored.slice(0, segmentAt(3)), { range: { start: size - 1, end: size - 1 } });
        });

        it('errors when bytes follow the last segment', async () => {
          await expectTamperDetected((stored) => concat([stored, new Uint8Array(1)]));
        });

        it('errors when two segments are swapped', async () => {
          await expectTamperDetected((stored) => {
            const first = stored.slice(segmentAt(0), segmentAt(1));
            const second = stored.slice(segmentAt(1), segmentAt(2));
            stored.set(second, segmentAt(0));
            stored.set(first, segmentAt(1));
            return stored;
          });
        });

        it('errors when a full non-final segment is presented as the last one', async () => {
          // An object cut after segment 1, read as if it were 2 segments long.
          const stored = await encrypt(keyring(), plaintext);
          const cut = stored.slice(0, segmentAt(2));
          const opened = await keyring().open({ ...object, size: 2 * SEG }, readerOver(cut).read);
          const { error } = await drain(opened!);
          expect((error as AttacheError).code).toBe('decryption_failed');
        });

        it('errors when the object is copied under another version id', async () => {
          await expectTamperDetected((stored) => stored, { versionId: OTHER_VERSION });
        });

        it('errors with the wrong key under the right key id', async () => {
          await expectTamperDetected((stored) => stored, { readRing: keyring({ k1: keyBytes(2) }) });
        });

        it('errors when the header names another key than the row', async () => {
          const stored = await encrypt(keyring({ k2: keyBytes(1) }, 'k2'), plaintext);
          const opened = await keyring({ k1: keyBytes(1), k2: keyBytes(1) }).open(object, readerOver(stored).read);
          const { error } = await drain(opened!);
          expect((error as AttacheError).code).toBe('decryption_failed');
        });

        it('refuses at once, with key_unavailable, an object of a key id it does not hold', async () => {
          const stored = await encrypt(keyring({ gone: keyBytes(3) }, 'gone'), plaintext);
          await expect(keyring().open({ ...object, keyId: 'gone' }, readerOver(stored).read)).rejects.toMatchObject({ code: 'key_unavailable' });
        });

        it('keeps the error of a failing read instead of calling it tampering', async () => {
          const failure = new Error('disk on fire');
          const opened = await keyring().open(object, async () => new ReadableStream({ pull: (controller) => controller.error(failure) }));
          expect((await drain(opened!)).error).toBe(failure);
        });
      });
    });
  }

  describe('format', () => {
    // Recorded from format version 1 as first released (AES-GCM by WebCrypto
    // only), with every salt byte 0x5a: objects written then stay readable,
    // and either implementation writes them byte for byte the same.
    const RECORDED = {
      empty: '4154434501026b315a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5ac96d07459d06edd854e21ce4c1c758cd',
      attache: '4154434501026b315a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5adb1f553afc5ec5c6abf346292956afef8e1e69e0d64a0c',
      /** SHA-256 of the stored bytes of plaintextOf(3 × 64 KiB + 123). */
      threeSegmentsSha256: 'acaa32098c3987f108c87dcea13c0c22de80e77f5908876feca89657e9a5fcb3',
    };
    const threeSegments = plaintextOf(3 * SEG + 123);

    /** Runs `body` with every random salt made of 0x5a bytes. */
    async function withFixedSalt<T>(body: () => Promise<T>): Promise<T> {
      const spy = vi.spyOn(globalThis.crypto, 'getRandomValues').mockImplementation(<A extends ArrayBufferView | null>(array: A): A => {
        if (array) new Uint8Array(array.buffer, array.byteOffset, array.byteLength).fill(0x5a);
        return array;
      });
      try {
        return await body();
      } finally {
        spy.mockRestore();
      }
    }

    it('uses node:crypto inline where the runtime has it (Node here), HKDF included', () => {
      expect(keyring().aesGcm.name).toBe('node:crypto');
      // So the recorded-bytes tests below check hkdfSync's data keys against format version 1 (written with WebCrypto's HKDF).
      expect(keyring().aesGcm.hkdf).toBeTypeOf('function');
      expect(webCryptoGcm.hkdf).toBeUndefined();
    });

    for (const gcm of [defaultAesGcm(), webCryptoGcm]) {
      const ring = () => new Keyring({ keys: { k1: keyBytes(1) }, activeKeyId: 'k1' }, gcm);

      it(`writes with AES-GCM by ${gcm.name} the recorded bytes of format version 1, given the same salt`, async () => {
        await withFixedSalt(async () => {
          expect(Buffer.from(await encrypt(ring(), new Uint8Array(0))).toString('hex')).toBe(RECORDED.empty);
          expect(Buffer.from(await encrypt(ring(), new TextEncoder().encode('attache'))).toString('hex')).toBe(RECORDED.attache);
          const stored = await encrypt(ring(), threeSegments);
          expect(createHash('sha256').update(stored).digest('hex')).toBe(RECORDED.threeSegmentsSha256);
        });
      });

      it(`reads with AES-GCM by ${gcm.name} an object recorded in format version 1`, async () => {
        const stored = new Uint8Array(Buffer.from(RECORDED.attache, 'hex'));
        const opened = await ring().open({ versionId: VERSION, keyId: 'k1', size: 7 }, readerOver(stored).read);
        expect(new TextDecoder().decode(await collect(opened!))).toBe('attache');
      });
    }

    it('reads with either implementation what the other wrote, whole and by range', async () => {
      const byNode = new Keyring({ keys: { k1: keyBytes(1) }, activeKeyId: 'k1' }, defaultAesGcm());
      const byWebCrypto = new Keyring({ keys: { k1: keyBytes(1) }, activeKeyId: 'k1' }, webCryptoGcm);
      const object = { versionId: VERSION, keyId: 'k1', size: threeSegments.byteLength };
      for (const [writer, reader] of [[byNode, byWebCrypto], [byWebCrypto, byNode]] as const) {
        const stored = await encrypt(writer, threeSegments);
        expectSameBytes(await collect((await reader.open(object, readerOver(stored).read))!), threeSegments);
        const range = { start: SEG - 5, end: 2 * SEG + 5 };
        expectSameBytes(await collect((await reader.open(object, readerOver(stored).read, range))!), threeSegments.slice(range.start, range.end + 1));
      }
    });
  });

  describe('options', () => {
    it('refuses keys that are not 32 bytes, bad key ids and an active key it does not hold', () => {
      expect(() => keyring({ k1: new Uint8Array(16) })).toThrow(/exactly 32 bytes/);
      expect(() => keyring({ 'bad id': keyBytes(1) }, 'bad id')).toThrow(/key id/);
      expect(() => keyring({ k1: keyBytes(1) }, 'k2')).toThrow(/activeKeyId/);
      expect(() => keyring({}, 'k1')).toThrow(/at least one key/);
    });
  });
});
