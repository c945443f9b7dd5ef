// The cutting proxy stands in for a flaky network in every runtime's tus
// interop test, so it must fail the way a network does: the server receives
// a prefix of what the client sent, then the connection ends. A proxy that
// forwarded chunks after its cut handed the Worker a body with a hole in it
// (CI, stop 23): the server stored it faithfully and the test blamed it.
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cutter, cuttingProxy } from '../src/tus-interop.js';

const MiB = 1024 * 1024;

/** A TCP server that keeps every byte each connection sent it, reading slowly. */
async function recordingServer() {
  const received: Buffer[][] = [];
  const ended: Promise<void>[] = [];
  const server = createServer((socket) => {
    const chunks: Buffer[] = [];
    received.push(chunks);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // A server slower than its client, as the Worker in miniflare is: the
      // proxy's writes queue up, so the cut's last write takes a while to flush.
      socket.pause();
      setTimeout(() => socket.resume(), 2);
    });
    ended.push(new Promise((resolve) => socket.on('close', () => resolve())));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    received: () => received.map((chunks) => Buffer.concat(chunks)),
    allClosed: () => Promise.all(ended),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Bytes whose every 64-byte window is unique, so a gap or a repeat shows. */
function countingBytes(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let index = 0; index < size; index += 4) bytes.writeUInt32BE(index, index);
  return bytes;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('cutter', () => {
  const chunk = (size: number, fill: number) => Buffer.alloc(size, fill);

  it('forwards what fits under the threshold, then nothing more on the connection it cut', () => {
    const decisions = cutter(100);
    const pass = decisions.connection();
    expect(pass(chunk(60, 1))).toEqual({ forward: chunk(60, 1), cut: false });
    expect(decisions.cut()).toBe(false);
    expect(pass(chunk(60, 2))).toEqual({ forward: chunk(40, 2), cut: true });
    expect(decisions.cut()).toBe(true);
    // What arrives while the cut's last write is flushing: dropped, not forwarded past the hole.
    expect(pass(chunk(60, 3))).toEqual({ forward: undefined, cut: false });
    expect(decisions.bytesFromClient()).toBe(180);
  });

  it('counts every connection towards the threshold and passes later connections whole', () => {
    const decisions = cutter(100);
    const first = decisions.connection();
    expect(first(chunk(70, 1)).forward).toEqual(chunk(70, 1));
    const second = decisions.connection();
    expect(second(chunk(50, 2))).toEqual({ forward: chunk(30, 2), cut: true });
    expect(first(chunk(10, 3))).toEqual({ forward: chunk(10, 3), cut: false });
    const third = decisions.connection();
    expect(third(chunk(500, 4))).toEqual({ forward: chunk(500, 4), cut: false });
  });
});

describe('cuttingProxy', () => {
  it('hands the server exactly the bytes before the cut, then nothing more on that connection', async () => {
    const server = await recordingServer();
    cleanups.push(server.close);
    const cutAfter = 12 * MiB + 12_345;
    const proxy = await cuttingProxy(server.baseUrl, cutAfter);
    cleanups.push(proxy.close);
    const sent = countingBytes(16 * MiB);

    // Written as fast as the socket takes it, in 64 KiB slices as tus-js-client does on Node 22+:
    // many chunks reach the proxy while the cut's last write is still flushing.
    const client: Socket = connect(Number(new URL(proxy.baseUrl).port), '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    for (let offset = 0; offset < sent.length && !client.destroyed; offset += 64 * 1024) {
      if (!client.write(sent.subarray(offset, offset + 64 * 1024))) {
        // Not events.once: the cut resets the socket, and once() rejects on 'error'.
        await new Promise((resolve) => client.once('drain', resolve).once('close', resolve));
      }
    }
    if (!client.closed) await new Promise((resolve) => client.once('close', resolve));
    await server.allClosed();

    expect(proxy.cut()).toBe(true);
    const [received] = server.received();
    expect(received?.byteLength).toBe(cutAfter);
    expect(received!.equals(sent.subarray(0, cutAfter))).toBe(true);
  });

  it('forwards later connections whole once it has cut', async () => {
    const server = await recordingServer();
    cleanups.push(server.close);
    const proxy = await cuttingProxy(server.baseUrl, 1000);
    cleanups.push(proxy.close);
    const sizes = [5000, 200_000];
    for (const [index, size] of sizes.entries()) {
      const client = connect(Number(new URL(proxy.baseUrl).port), '127.0.0.1');
      client.on('error', () => {});
      await once(client, 'connect');
      client.write(countingBytes(size));
      // Until the server has what this connection will ever give it (the first is cut at 1000 bytes).
      const expected = index === 0 ? 1000 : size;
      for (let waited = 0; (server.received()[index]?.byteLength ?? 0) < expected && waited < 10_000; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      client.destroy();
    }
    const [first, second] = server.received();
    expect(first?.equals(countingBytes(5000).subarray(0, 1000))).toBe(true);
    expect(second?.equals(countingBytes(200_000))).toBe(true);
  });
});
