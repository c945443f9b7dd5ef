import { describe, expect, it } from 'vitest';
import { isUuidV7, looksLikeId, newId } from '../src/ids.js';

describe('newId', () => {
  it('makes lowercase RFC 9562 version 7 ids', () => {
    for (let i = 0; i < 1000; i++) {
      const id = newId();
      expect(isUuidV7(id)).toBe(true);
      expect(looksLikeId(id)).toBe(true);
    }
  });

  it('never repeats one, across many refills of its random pool', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20_000; i++) ids.add(newId());
    expect(ids.size).toBe(20_000);
  });

  it('sorts ids in the order they were made, within a millisecond too', () => {
    // Thousands of ids per millisecond: most share a timestamp with the one before.
    const ids = Array.from({ length: 5000 }, () => newId());
    expect([...ids].sort()).toEqual(ids);
  });

  it('puts the current time in the first 48 bits', () => {
    const before = Date.now();
    const id = newId();
    const after = Date.now();
    const msecs = Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
    // The counter may carry into the timestamp, never by more than a few milliseconds here.
    expect(msecs).toBeGreaterThanOrEqual(before);
    expect(msecs).toBeLessThanOrEqual(after + 5);
  });

  it('varies its random part from id to id', () => {
    const tails = new Set(Array.from({ length: 1000 }, () => newId().slice(-12)));
    expect(tails.size).toBe(1000);
  });
});
