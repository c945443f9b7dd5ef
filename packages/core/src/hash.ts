// Streaming CRC-32 and SHA-256, computed in the same pass as the write.
//
// Where the runtime has Node's built-ins (Node ≥ 20.16, Bun, Workers with
// nodejs_compat) we use `zlib.crc32` and `crypto.createHash`, which are
// native and several times faster. Elsewhere we fall back to two well-kept
// pure-JS libraries: `crc-32` (SheetJS) and `@noble/hashes`.
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import CRC32 from 'crc-32';
import { nodeBuiltin } from './node-builtins.js';

interface NodeBuiltins {
  zlib?: { crc32?: (data: Uint8Array, value?: number) => number };
  crypto?: { createHash(algorithm: 'sha256'): { update(data: Uint8Array): unknown; digest(): Uint8Array } };
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

/** Which implementations are in use (reported by benchmarks and docs). */
export const digestImplementation = {
  crc32: nativeCrc32 ? 'node:zlib' : 'crc-32',
  sha256: builtins.crypto ? 'node:crypto' : '@noble/hashes',
} as const;

function toHex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

export function bytesToHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
