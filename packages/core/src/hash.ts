// Streaming CRC-32 and SHA-256, computed in the same pass as the write.
//
// Where the runtime has Node's built-ins (Node ≥ 20.16, Bun, Workers with
// nodejs_compat) we use `zlib.crc32` and `crypto.createHash`, which are
// native and several times faster. Elsewhere we fall back to two well-kept
// pure-JS libraries: `crc-32` (SheetJS) and `@noble/hashes`.
import { sha1 as nobleSha1 } from '@noble/hashes/legacy.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import CRC32 from 'crc-32';
import { nodeBuiltin } from './node-builtins.js';

interface NodeBuiltins {
  zlib?: { crc32?: (data: Uint8Array, value?: number) => number };
  crypto?: { createHash(algorithm: 'sha256' | 'sha1'): { update(data: Uint8Array): unknown; digest(): Uint8Array } };
}

const builtins: NodeBuiltins = {
  zlib: nodeBuiltin<NodeBuiltins['zlib']>('node:zlib'),
  crypto: nodeBuiltin<NodeBuiltins['crypto']>('node:crypto'),
};
const nativeCrc32 = typeof builtins.zlib?.crc32 === 'function' ? builtins.zlib.crc32 : undefined;

export interface Digests {
  /** 8 lowercase hex digits. */
  crc32: string;
  /** 64 lowercase hex digits. */
  sha256: string;
}

export interface StreamingDigest {
  update(chunk: Uint8Array): void;
  digest(): Digests;
}

export function createDigest(): StreamingDigest {
  let crc = 0;
  const sha = builtins.crypto ? builtins.crypto.createHash('sha256') : nobleSha256.create();
  return {
    update(chunk) {
      crc = nativeCrc32 ? nativeCrc32(chunk, crc) : CRC32.buf(chunk, crc);
      sha.update(chunk);
    },
    digest() {
      return { crc32: toHex32(crc), sha256: bytesToHex(sha.digest()) };
    },
  };
}

/** CRC-32 of `chunk` continuing from `crc` (the CRC-32 of the bytes before it; 0 at the start). */
export function crc32Continue(crc: number, chunk: Uint8Array): number {
  return (nativeCrc32 ? nativeCrc32(chunk, crc) : CRC32.buf(chunk, crc)) >>> 0;
}

/** Algorithms a client may name in a tus `Upload-Checksum` (sha1 is the one the tus spec requires). */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'crc32'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** A streaming checksum of one request body; `digest()` gives raw bytes (CRC-32 as 4 big-endian bytes). */
export function createChecksum(algorithm: ChecksumAlgorithm): { update(chunk: Uint8Array): void; digest(): Uint8Array } {
  if (algorithm === 'crc32') {
    let crc = 0;
    return {
      update: (chunk) => void (crc = crc32Continue(crc, chunk)),
      digest: () => new Uint8Array([crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff]),
    };
  }
  const hash = builtins.crypto
    ? builtins.crypto.createHash(algorithm)
    : algorithm === 'sha1'
      ? nobleSha1.create()
      : nobleSha256.create();
  return { update: (chunk) => void hash.update(chunk), digest: () => new Uint8Array(hash.digest()) };
}

/** Which implementations are in use (reported by benchmarks and docs). */
export const digestImplementation = {
  crc32: nativeCrc32 ? 'node:zlib' : 'crc-32',
  sha256: builtins.crypto ? 'node:crypto' : '@noble/hashes',
} as const;

export function toHex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

export function bytesToHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
