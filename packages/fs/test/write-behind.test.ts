import { fstatSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBehind, type WritableFile } from '../src/write-behind.js';

let sandbox: string;
beforeAll(async () => {
  sandbox = await mkdtemp(join(tmpdir(), 'attache-write-behind-'));
});
afterAll(async () => {
  await rm(sandbox, { recursive: true, force: true });
});

/** `count` chunks of varying odd sizes, each filled with bytes that depend on its index and offset. */
function oddChunks(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, index) => {
    const chunk = new Uint8Array(1 + ((index * 7919) % 70_000));
    for (let i = 0; i < chunk.length; i++) chunk[i] = (index * 31 + i) & 0xff;
    return chunk;
  });
}

function concat(chunks: Uint8Array[]): Buffer {
  const out = Buffer.alloc(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

describe('writeBehind', () => {
  it('writes every chunk in order while later chunks are still arriving', async () => {
    const file = join(sandbox, 'ordered');
    const handle = await open(file, 'wx');
    const chunks = oddChunks(300);
    const writer = writeBehind(handle, 256 * 1024);
    for (const chunk of chunks) await writer.write(chunk);
    await writer.finish();
    await handle.close();
    expect((await readFile(file)).equals(concat(chunks))).toBe(true);
  });

  it('gathers chunks that arrive during a write and writes them together', async () => {
    const file = join(sandbox, 'gathered');
    const handle = await open(file, 'wx');
    const writer = writeBehind(handle, 1024 * 1024);
    const chunks = oddChunks(64);
    // Not awaited one by one: all but the first arrive while the first write is in flight.
    const queued = chunks.map((chunk) => writer.write(chunk));
    await Promise.all(queued);
    await writer.finish();
    await handle.close();
    expect((await readFile(file)).equals(concat(chunks))).toBe(true);
  });

  it('holds the writer back once more than the limit is gathered, until the write in flight is done', async () => {
    const handle = await open(join(sandbox, 'bounded'), 'wx');
    // The real file, with each writev held until the test lets it go.
    const held: (() => void)[] = [];
    const slowFile: WritableFile = {
      writev: async (buffers: Uint8Array[]) => {
        await new Promise<void>((resolve) => held.push(resolve));
        return handle.writev(buffers);
      },
    };
    const writer = writeBehind(slowFile, 64 * 1024);
    await writer.write(new Uint8Array(1024)); // in flight, held
    await writer.write(new Uint8Array(32 * 1024)); // gathered: within the limit, so accepted at once
    let accepted = false;
    const over = writer.write(new Uint8Array(64 * 1024)).then(() => (accepted = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(accepted).toBe(false);
    held.shift()!(); // the first write completes; the gathered chunks go out together
    await over;
    expect(held).toHaveLength(1);
    held.shift()!();
    await writer.finish();
    expect(fstatSync(handle.fd).size).toBe(1024 + 96 * 1024);
    await handle.close();
  });

  it('rejects later writes and finish with the failure of a write', async () => {
    const file = join(sandbox, 'read-only');
    await writeFile(file, '');
    const handle = await open(file, 'r'); // writing fails with EBADF
    const writer = writeBehind(handle, 1024 * 1024);
    await writer.write(new Uint8Array(10));
    await writer.settled();
    await expect(writer.write(new Uint8Array(10))).rejects.toMatchObject({ code: 'EBADF' });
    await expect(writer.finish()).rejects.toMatchObject({ code: 'EBADF' });
    await handle.close();
  });

  it('ignores empty chunks', async () => {
    const file = join(sandbox, 'empty-chunks');
    const handle = await open(file, 'wx');
    const writer = writeBehind(handle, 1024);
    await writer.write(new Uint8Array(0));
    await writer.write(new Uint8Array([1, 2, 3]));
    await writer.write(new Uint8Array(0));
    await writer.finish();
    await handle.close();
    expect([...(await readFile(file))]).toEqual([1, 2, 3]);
  });
});
