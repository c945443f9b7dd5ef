// AES-256-GCM of one segment under one object's data key, in two
// implementations that produce the same bytes: `node:crypto`, called inline,
// where the runtime has it (Node, Bun, Workers with nodejs_compat), and
// WebCrypto everywhere else. Inline is the default because it is the faster
// one for 64 KiB segments: Node's WebCrypto copies each segment into a job for
// its thread pool, and that hand-off alone costs the event loop as much as
// node:crypto's whole encryption, before its own latency (measured in
// docs/architecture.md, deviation 14). Both are standard AES-GCM with a
// 96-bit nonce and a 128-bit tag appended to the ciphertext, so either reads
// what the other wrote.
import { AttacheError } from './errors.js';
import { nodeBuiltin } from './node-builtins.js';

/** Bytes WebCrypto accepts: a view of an ordinary ArrayBuffer. */
export type Bytes = Uint8Array<ArrayBuffer>;

export const TAG_SIZE = 16;

/** One object's data key, ready to seal and open its segments. */
export interface SegmentKey {
  /**
   * The ciphertext of `plaintext` and then its tag, as pieces in order (not
   * joined: joining would copy every segment once more, and writers take
   * pieces). A promise when the work is asynchronous; `plaintext` may be
   * reused as soon as this returns (WebCrypto copies its input at the call).
   */
  seal(nonce: Bytes, aad: Bytes, plaintext: Bytes): Uint8Array[] | Promise<Uint8Array[]>;
  /** The plaintext of `sealed` (ciphertext then tag); throws or rejects when it fails authentication. */
  open(nonce: Bytes, aad: Bytes, sealed: Bytes): Bytes | Promise<Bytes>;
}

/** An AES-256-GCM implementation: turns 32 raw key bytes into a `SegmentKey`. */
export interface AesGcm {
  readonly name: 'node:crypto' | 'WebCrypto';
  importKey(raw: Bytes): Promise<SegmentKey>;
  /**
   * HKDF-SHA-256 of `master` to 32 bytes, computed at once where the runtime
   * offers it (node:crypto's hkdfSync): the same bytes as WebCrypto's
   * `deriveBits`, without its thread-pool round trip per object, which
   * dominated the cost of encrypting a small attachment.
   */
  readonly hkdf?: (master: Bytes, salt: Bytes, info: Bytes) => Bytes;
}

/** WebCrypto's SubtleCrypto (HKDF needs it whichever AES-GCM is in use). */
export function subtle(): SubtleCrypto {
  const api = globalThis.crypto?.subtle;
  if (!api) throw new AttacheError('internal', 'encryption at rest needs WebCrypto (globalThis.crypto.subtle)');
  return api;
}

export const webCryptoGcm: AesGcm = {
  name: 'WebCrypto',
  async importKey(raw) {
    const key = await subtle().importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
    return {
      async seal(nonce, aad, plaintext) {
        return [new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, key, plaintext))];
      },
      async open(nonce, aad, sealed) {
        return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, key, sealed));
      },
    };
  },
};

/** The part of `node:crypto` used here, typed here so core compiles without Node's types. */
interface NodeGcmCipher {
  setAAD(aad: Uint8Array): unknown;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
  getAuthTag(): Uint8Array;
}
interface NodeGcmDecipher {
  setAAD(aad: Uint8Array): unknown;
  setAuthTag(tag: Uint8Array): unknown;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
}
interface NodeCrypto {
  hkdfSync?(digest: 'sha256', key: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): ArrayBuffer;
  createCipheriv(algorithm: 'aes-256-gcm', key: Uint8Array, nonce: Uint8Array, options: { authTagLength: number }): NodeGcmCipher;
  createDecipheriv(algorithm: 'aes-256-gcm', key: Uint8Array, nonce: Uint8Array, options: { authTagLength: number }): NodeGcmDecipher;
}

function nodeGcmOf(api: NodeCrypto): AesGcm {
  const options = { authTagLength: TAG_SIZE };
  const hkdfSync = api.hkdfSync;
  return {
    name: 'node:crypto',
    ...(typeof hkdfSync === 'function'
      ? { hkdf: (master: Bytes, salt: Bytes, info: Bytes) => new Uint8Array(hkdfSync('sha256', master, salt, info, 32)) }
      : {}),
    async importKey(raw) {
      const key = raw.slice();
      return {
        seal(nonce, aad, plaintext) {
          const cipher = api.createCipheriv('aes-256-gcm', key, nonce, options);
          cipher.setAAD(aad);
          const body = cipher.update(plaintext);
          const rest = cipher.final();
          return rest.byteLength > 0 ? [body, rest, cipher.getAuthTag()] : [body, cipher.getAuthTag()];
        },
        open(nonce, aad, sealed) {
          const length = sealed.byteLength - TAG_SIZE;
          if (length < 0) throw new Error('a sealed segment is shorter than its tag');
          const decipher = api.createDecipheriv('aes-256-gcm', key, nonce, options);
          decipher.setAAD(aad);
          decipher.setAuthTag(sealed.subarray(length));
          const body = decipher.update(sealed.subarray(0, length));
          // Throws unless the tag matches: nothing of `body` is handed on before this.
          const rest = decipher.final();
          if (rest.byteLength === 0) return body as Bytes;
          const whole = new Uint8Array(body.byteLength + rest.byteLength);
          whole.set(body, 0);
          whole.set(rest, body.byteLength);
          return whole;
        },
      };
    },
  };
}

let detected: AesGcm | undefined;

/** node:crypto where the runtime has a working AES-256-GCM in it, WebCrypto otherwise (decided once). */
export function defaultAesGcm(): AesGcm {
  if (detected) return detected;
  const api = nodeBuiltin<Partial<NodeCrypto>>('node:crypto');
  detected = webCryptoGcm;
  if (typeof api?.createCipheriv === 'function' && typeof api.createDecipheriv === 'function') {
    try {
      // A runtime may offer the functions without this cipher (a partial polyfill): try it once.
      const cipher = api.createCipheriv('aes-256-gcm', new Uint8Array(32), new Uint8Array(12), { authTagLength: TAG_SIZE });
      cipher.setAAD(new Uint8Array(1));
      cipher.update(new Uint8Array(1));
      cipher.final();
      if (cipher.getAuthTag().byteLength === TAG_SIZE) detected = nodeGcmOf(api as NodeCrypto);
    } catch {
      // WebCrypto it is.
    }
  }
  return detected;
}
