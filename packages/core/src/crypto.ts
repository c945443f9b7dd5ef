// Encryption at rest (DESIGN.md "Encryption at rest"). WebCrypto only
// (`globalThis.crypto.subtle`), so the same code runs on Node, Bun and Workers.
//
// A stored object is a header followed by segments:
//
//   header   = magic "ATCE" | format version (1 byte) | key id length (1 byte)
//              | key id (ASCII) | salt (16 random bytes)
//   segment i = AES-256-GCM(plaintext bytes [i·64 KiB, (i+1)·64 KiB)) + 16-byte tag
//
// Every segment but the last holds exactly 64 KiB of plaintext; the last holds
// 1 to 64 KiB (0 only for an empty object, which still has one segment), so
// the plaintext size alone fixes the whole layout and a byte range maps to the
// segments covering it without reading anything else.
//
// The data key of an object is HKDF-SHA-256(master key, salt, info = version
// id): the version id binds the object to the row that names it (a blob copied
// under another version id fails to decrypt), and the random salt makes every
// object's key unique even if a version id were ever reused, so no
// (key, nonce) pair repeats. Each segment's nonce and associated data carry its
// index and whether it is the last one, so a reordered, dropped, truncated or
// appended segment fails authentication; the associated data also covers the
// header and the version id.
//
// The AES-GCM itself is `node:crypto` called inline where the runtime has it,
// WebCrypto elsewhere (aes-gcm.ts): the same bytes either way.
import { defaultAesGcm, subtle, TAG_SIZE, type AesGcm, type Bytes, type SegmentKey } from './aes-gcm.js';
import type { ByteRange } from './ports.js';
import { AttacheError } from './errors.js';

/** Plaintext bytes per segment. */
export const SEGMENT_SIZE = 64 * 1024;
/** Stored bytes of a full segment. */
const SEALED_SIZE = SEGMENT_SIZE + TAG_SIZE;
const SALT_SIZE = 16;
const MAGIC = new Uint8Array([0x41, 0x54, 0x43, 0x45]); // "ATCE"
const FORMAT_VERSION = 1;
const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const MASTER_KEY_SIZE = 32;
/**
 * Segments of plaintext a read opens per pull: 4 × 64 KiB, the size of the
 * file store's reads. They are handed on as four chunks (see `enqueueEach`).
 */
const BATCH_SEGMENTS = 4;
/** Segments a read opens ahead of its consumer (memory: this many segments, plus the chunk being handed over). */
const READ_AHEAD = BATCH_SEGMENTS;
/** Segments an upload seals side by side when sealing is asynchronous (WebCrypto). */
const SEAL_AHEAD = 4;

const encoder = new TextEncoder();

export interface EncryptionOptions {
  /** Master keys by key id (`[A-Za-z0-9._-]`, up to 64 characters); each exactly 32 bytes. */
  keys: Readonly<Record<string, Uint8Array>>;
  /** The key new writes use; must be one of `keys`. */
  activeKeyId: string;
}

/** The row fields that identify an encrypted object. */
export interface EncryptedObject {
  versionId: string;
  keyId: string;
  /** Plaintext size in bytes. */
  size: number;
}

/** Reads bytes of the stored object (a byte range, or all of it); undefined when it does not exist. */
export type CiphertextReader = (range?: ByteRange) => Promise<ReadableStream<Uint8Array> | undefined>;

/** Checks the options at once (a TypeError, like every other bad store option). */
export function checkEncryptionOptions(options: EncryptionOptions): void {
  const ids = Object.keys(options.keys ?? {});
  if (ids.length === 0) throw new TypeError('encryption.keys must hold at least one key');
  for (const id of ids) {
    if (!KEY_ID_PATTERN.test(id)) throw new TypeError(`encryption key id "${id}" must be 1–64 characters of A-Z a-z 0-9 . _ -`);
    const key = options.keys[id];
    if (!(key instanceof Uint8Array) || key.byteLength !== MASTER_KEY_SIZE) {
      throw new TypeError(`encryption key "${id}" must be a Uint8Array of exactly ${MASTER_KEY_SIZE} bytes`);
    }
  }
  if (!Object.hasOwn(options.keys, options.activeKeyId)) {
    throw new TypeError(`encryption.activeKeyId "${options.activeKeyId}" is not one of encryption.keys`);
  }
}

/** Stored size of an object of `size` plaintext bytes encrypted under `keyId`. */
export function encryptedSize(size: number, keyId: string): number {
  return headerSize(keyId) + size + segmentCount(size) * TAG_SIZE;
}

function headerSize(keyId: string): number {
  return MAGIC.byteLength + 2 + keyId.length + SALT_SIZE;
}

function segmentCount(size: number): number {
  return Math.max(1, Math.ceil(size / SEGMENT_SIZE));
}

/** Plaintext length of segment `index` of an object of `size` bytes. */
function segmentLength(index: number, size: number): number {
  return Math.min(SEGMENT_SIZE, size - index * SEGMENT_SIZE);
}

function encodeHeader(keyId: string, salt: Uint8Array): Bytes {
  const header = new Uint8Array(headerSize(keyId));
  header.set(MAGIC, 0);
  header[4] = FORMAT_VERSION;
  header[5] = keyId.length;
  header.set(encoder.encode(keyId), 6);
  header.set(salt, 6 + keyId.length);
  return header;
}

/** The salt of a header written for `keyId`; anything else in it that differs is tampering. */
function decodeHeader(header: Uint8Array, keyId: string): Bytes {
  const expected = encodeHeader(keyId, new Uint8Array(SALT_SIZE));
  const fixed = expected.byteLength - SALT_SIZE;
  for (let i = 0; i < MAGIC.byteLength; i++) {
    if (header[i] !== MAGIC[i]) throw decryptionFailed('the object has no encryption header');
  }
  if (header[4] !== FORMAT_VERSION) throw decryptionFailed(`unknown encryption format version ${header[4]}`);
  for (let i = 5; i < fixed; i++) {
    if (header[i] !== expected[i]) throw decryptionFailed(`the object's header does not name key "${keyId}"`);
  }
  return header.slice(fixed);
}

function decryptionFailed(detail: string): AttacheError {
  return new AttacheError('decryption_failed', `stored bytes failed authentication: ${detail}`);
}

function nonceOf(index: number, final: boolean): Bytes {
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  nonce[0] = final ? 1 : 0;
  view.setUint32(4, Math.floor(index / 2 ** 32));
  view.setUint32(8, index >>> 0);
  return nonce;
}

/** Associated data of one segment: the header, the version id, the index and the final flag. */
function aadOf(header: Uint8Array, versionId: Uint8Array, index: number, final: boolean): Bytes {
  const aad = new Uint8Array(header.byteLength + 2 + versionId.byteLength + 9);
  const view = new DataView(aad.buffer);
  aad.set(header, 0);
  let at = header.byteLength;
  view.setUint16(at, versionId.byteLength);
  at += 2;
  aad.set(versionId, at);
  at += versionId.byteLength;
  view.setUint32(at, Math.floor(index / 2 ** 32));
  view.setUint32(at + 4, index >>> 0);
  aad[at + 8] = final ? 1 : 0;
  return aad;
}

/**
 * Master keys by id, imported once. `encrypt` writes with the active key;
 * `open` reads an object written under any key it holds.
 */
export class Keyring {
  readonly activeKeyId: string;
  /** The AES-GCM in use: node:crypto inline where the runtime has it (the default), else WebCrypto. */
  readonly aesGcm: AesGcm;
  private readonly raw: ReadonlyMap<string, Bytes>;
  private readonly imported = new Map<string, Promise<CryptoKey>>();

  constructor(options: EncryptionOptions, aesGcm: AesGcm = defaultAesGcm()) {
    checkEncryptionOptions(options);
    this.activeKeyId = options.activeKeyId;
    this.aesGcm = aesGcm;
    // Copied, so a caller that reuses its buffer cannot change our keys.
    this.raw = new Map(Object.entries(options.keys).map(([id, key]) => [id, key.slice()]));
  }

  has(keyId: string): boolean {
    return this.raw.has(keyId);
  }

  private masterKey(keyId: string): Promise<CryptoKey> {
    let key = this.imported.get(keyId);
    if (!key) {
      const raw = this.raw.get(keyId);
      if (!raw) return Promise.reject(keyUnavailable(keyId));
      key = subtle().importKey('raw', raw, 'HKDF', false, ['deriveBits']);
      this.imported.set(keyId, key);
    }
    return key;
  }

  // HKDF's first 256 bits: the very key WebCrypto's deriveKey(…, AES-GCM 256) gives.
  private async dataKey(keyId: string, salt: Bytes, versionId: string): Promise<SegmentKey> {
    const info = encoder.encode(`attache/v1 data key\0${versionId}`);
    const raw = this.raw.get(keyId);
    if (this.aesGcm.hkdf && raw) return this.aesGcm.importKey(this.aesGcm.hkdf(raw, salt, info));
    const bits = await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, await this.masterKey(keyId), 256);
    return this.aesGcm.importKey(new Uint8Array(bits));
  }

  /**
   * Encrypts a plaintext stream for the object `versionId` with the active
   * key. A full segment is sealed only once a byte after it arrives, so the
   * last one is known to be last, and each sealed segment is handed on as
   * the pieces sealing gave, unjoined (the header goes before the first): at
   * once when sealing is inline (node:crypto); with WebCrypto, up to
   * SEAL_AHEAD seal side by side. It holds one segment filling and the
   * segments being sealed.
   */
  encrypt(versionId: string): TransformStream<Uint8Array, Uint8Array> {
    const keyId = this.activeKeyId;
    const salt = globalThis.crypto.getRandomValues(new Uint8Array(SALT_SIZE));
    const header = encodeHeader(keyId, salt);
    const versionBytes = encoder.encode(versionId);
    // Reused from segment to segment: sealing copies its input at the call.
    const pending = new Uint8Array(SEGMENT_SIZE);
    let filled = 0;
    let index = 0;
    let key: SegmentKey;
    // Sealed or sealing segments not handed on yet, in order.
    const queue: (Uint8Array[] | Promise<Uint8Array[]>)[] = [];
    let headerSent = false;
    const seal = (final: boolean) => {
      const sealed = key.seal(nonceOf(index, final), aadOf(header, versionBytes, index, final), pending.subarray(0, filled));
      // Awaited by handOn; until then a failure must not count as unhandled.
      if (sealed instanceof Promise) sealed.catch(() => {});
      queue.push(sealed);
      index += 1;
      filled = 0;
    };
    /** Hands on, in order, every sealed segment, waiting while more than `inFlight` are still sealing. */
    const handOn = async (controller: TransformStreamDefaultController<Uint8Array>, inFlight: number) => {
      while (queue.length > 0 && (!(queue[0] instanceof Promise) || queue.length > inFlight)) {
        const next = queue.shift()!;
        const pieces = next instanceof Promise ? await next : next;
        if (!headerSent) {
          controller.enqueue(header);
          headerSent = true;
        }
        for (const piece of pieces) controller.enqueue(piece);
      }
    };
    return new TransformStream<Uint8Array, Uint8Array>(
      {
        start: async () => {
          key = await this.dataKey(keyId, salt, versionId);
        },
        async transform(chunk, controller) {
          let at = 0;
          while (at < chunk.byteLength) {
            if (filled === SEGMENT_SIZE) {
              seal(false);
              await handOn(controller, SEAL_AHEAD - 1);
            }
            const take = Math.min(SEGMENT_SIZE - filled, chunk.byteLength - at);
            pending.set(chunk.subarray(at, at + take), filled);
            filled += take;
            at += take;
          }
        },
        async flush(controller) {
          seal(true);
          await handOn(controller, 0);
        },
      },
      { highWaterMark: 1 },
      { highWaterMark: 0 },
    );
  }

  /**
   * Opens the plaintext of `object`, or of the byte `range` of it (inclusive,
   * already clamped to the size), reading only the ciphertext segments that
   * cover it — plus the header, in a read of its own when the range does not
   * start in the first segment. Both reads are opened before this resolves,
   * so a blob that moves afterwards is still read whole; undefined when
   * either finds no blob. The stream yields exactly the requested bytes or
   * errors with `decryption_failed`; it never ends early. It decrypts up to
   * READ_AHEAD segments ahead of its consumer, BATCH_SEGMENTS per pull.
   */
  async open(object: EncryptedObject, read: CiphertextReader, range?: ByteRange): Promise<ReadableStream<Uint8Array> | undefined> {
    const { keyId, size } = object;
    if (!this.has(keyId)) throw keyUnavailable(keyId);
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const first = Math.floor(start / SEGMENT_SIZE);
    const last = size === 0 ? 0 : Math.floor(end / SEGMENT_SIZE);
    const headerBytes = headerSize(keyId);
    const segmentOffset = (index: number) => headerBytes + index * SEALED_SIZE;
    const lastEnd = segmentOffset(last) + segmentLength(last, size) + TAG_SIZE - 1;

    let headerStream: ReadableStream<Uint8Array> | undefined;
    let segmentStream: ReadableStream<Uint8Array> | undefined;
    if (range === undefined) {
      // The whole object, so bytes past the last segment are noticed too.
      segmentStream = await read();
    } else if (first === 0) {
      segmentStream = await read({ start: 0, end: lastEnd });
    } else {
      headerStream = await read({ start: 0, end: headerBytes - 1 });
      if (headerStream) segmentStream = await read({ start: segmentOffset(first), end: lastEnd });
      if (!segmentStream) await headerStream?.cancel().catch(() => {});
    }
    if (!segmentStream) return undefined;

    const segments = new ExactReader(segmentStream);
    const headerSource = headerStream ? new ExactReader(headerStream) : segments;
    const versionBytes = encoder.encode(object.versionId);
    let header: Bytes | undefined;
    let key: SegmentKey | undefined;
    let index = first;
    // A failure found after some segments of a chunk were opened: those are
    // handed on first, and the stream errors on the next pull.
    let failure: unknown;
    const cancelAll = async (reason?: unknown) => {
      await segments.cancel(reason);
      if (headerSource !== segments) await headerSource.cancel(reason);
    };

    // Segments are read in order, and opened while the consumer still
    // handles the chunk before: at most READ_AHEAD segments in flight.
    let reads: Promise<unknown> = Promise.resolve();
    const inFlight: Promise<Uint8Array>[] = [];
    let nextToStart = first;
    const startNext = (dataKey: SegmentKey, sealedHeader: Bytes) => {
      const segment = nextToStart++;
      const final = segment === segmentCount(size) - 1;
      const length = segmentLength(segment, size);
      const sealed = reads.then(() => segments.readExactly(length + TAG_SIZE, `segment ${segment} is truncated`));
      reads = sealed;
      const opened = sealed.then(async (bytes) => {
        try {
          return await dataKey.open(nonceOf(segment, final), aadOf(sealedHeader, versionBytes, segment, final), bytes);
        } catch (cause) {
          throw new AttacheError(
            'decryption_failed',
            `stored bytes failed authentication: segment ${segment} was altered, moved or written with another key`,
            { cause },
          );
        }
      });
      // Awaited in order by `pull`; until then a failure must not count as unhandled.
      opened.catch(() => {});
      inFlight.push(opened);
    };

    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          if (failure !== undefined) throw failure;
          const parts: Uint8Array[] = [];
          try {
            if (!key || !header) {
              header = await headerSource.readExactly(headerBytes, 'the header is truncated');
              if (headerSource !== segments) await headerSource.cancel();
              key = await this.dataKey(keyId, decodeHeader(header, keyId), object.versionId);
            }
            do {
              while (inFlight.length < READ_AHEAD && nextToStart <= last) startNext(key, header);
              const plaintext = await inFlight.shift()!;
              const segmentStart = index * SEGMENT_SIZE;
              const from = Math.max(start, segmentStart) - segmentStart;
              const to = Math.min(end + 1, segmentStart + segmentLength(index, size)) - segmentStart;
              if (to > from) parts.push(plaintext.subarray(from, to));
              index += 1;
            } while (index <= last && parts.length < BATCH_SEGMENTS);
            if (index > last) {
              if (range === undefined && !(await segments.atEnd())) throw decryptionFailed('bytes follow the last segment');
              await cancelAll();
              enqueueEach(controller, parts);
              controller.close();
            } else {
              enqueueEach(controller, parts);
            }
          } catch (error) {
            // Authentication failures are already `decryption_failed`; a failing read keeps its own error.
            await cancelAll(error);
            if (parts.length === 0) throw error;
            failure = error;
            enqueueEach(controller, parts);
          }
        },
        cancel: (reason) => cancelAll(reason),
      },
      { highWaterMark: 0 },
    );
  }
}

/**
 * Hands on the plaintext parts of one pull as they are, not joined into one
 * chunk: joining copied every byte once more and doubled what each download
 * allocates, which showed as garbage-collector time (a fifth of an encrypted
 * download's CPU).
 */
function enqueueEach(controller: ReadableStreamDefaultController<Uint8Array>, parts: readonly Uint8Array[]): void {
  for (const part of parts) controller.enqueue(part);
}

export function keyUnavailable(keyId: string): AttacheError {
  return new AttacheError(
    'key_unavailable',
    `the attachment is encrypted with key "${keyId}", which this store is not configured with`,
  );
}

/** Reads exact byte counts from a stream, copying only when a count spans chunks. */
class ExactReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private rest: Bytes | undefined;
  private done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }

  async readExactly(length: number, truncated: string): Promise<Bytes> {
    let out: Bytes | undefined;
    let filled = 0;
    while (filled < length) {
      const chunk = await this.next();
      if (!chunk) throw decryptionFailed(truncated);
      const take = Math.min(length - filled, chunk.byteLength);
      if (take < chunk.byteLength) this.rest = chunk.subarray(take);
      if (out === undefined && take === length) return chunk.subarray(0, take);
      out ??= new Uint8Array(length);
      out.set(chunk.subarray(0, take), filled);
      filled += take;
    }
    return out ?? new Uint8Array(0);
  }

  /** Whether the stream holds no more bytes. */
  async atEnd(): Promise<boolean> {
    const chunk = await this.next();
    if (!chunk) return true;
    this.rest = chunk;
    return false;
  }

  private async next(): Promise<Bytes | undefined> {
    if (this.rest) {
      const rest = this.rest;
      this.rest = undefined;
      return rest;
    }
    while (!this.done) {
      const { value, done } = await this.reader.read();
      if (done) this.done = true;
      // Stream chunks are never views of a SharedArrayBuffer.
      else if (value.byteLength > 0) return value as Bytes;
    }
    return undefined;
  }

  async cancel(reason?: unknown): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.rest = undefined;
    await this.reader.cancel(reason).catch(() => {});
  }
}
