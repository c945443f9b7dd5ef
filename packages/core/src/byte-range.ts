import type { ByteRange } from './ports.js';

/** Throws a RangeError unless `range` is whole, non-negative numbers with `end` ≥ `start`: what every blob store's `get` accepts. */
export function checkByteRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`);
  }
}
