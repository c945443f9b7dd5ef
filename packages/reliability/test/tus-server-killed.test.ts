// A server killed (SIGKILL) in the middle of a tus PATCH: after a restart the
// upload stands at its last durable offset and resumes from there to a whole,
// correct attachment. Runs the built `attache serve` on SQLite + fs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestsOf, eventuallyTrue, patternBytes, tusClient } from '@attache/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { assertBuilt, killLeftovers, killServer, startServer, stopServer } from './crash-harness.js';

const MIB = 1024 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream' };
const directories: string[] = [];

afterEach(() => killLeftovers());
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

describe('tus: a server killed mid-PATCH', () => {
  it('resumes after a restart from the last durable offset, and the attachment is whole', async () => {
    assertBuilt();
    const dataDir = await mkdtemp(join(tmpdir(), 'attache-tus-kill-'));
    directories.push(dataDir);
    const file = patternBytes(4 * MIB, 41);
    let server = await startServer(dataDir);
    let client = tusClient(`${server.url}/v1`);
    const path = new URL(await client.createUrl(file.byteLength)).pathname;
    expect((await client.patch(`${server.url}${path}`, 0, file.slice(0, MIB))).status).toBe(204);

    // The next PATCH trickles in; once a MiB of it was handed over, the server dies.
    let handedOver = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (handedOver >= 3 * MIB) return controller.close();
        controller.enqueue(file.slice(MIB + handedOver, MIB + handedOver + 64 * 1024));
        handedOver += 64 * 1024;
        await new Promise((resolve) => setTimeout(resolve, 5));
      },
    });
    const dying = fetch(`${server.url}${path}`, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': String(MIB) },
      body,
      duplex: 'half',
    } as RequestInit).then(
      (response) => response.status,
      () => 'broken',
    );
    await eventuallyTrue(async () => handedOver >= MIB);
    killServer(server);
    expect(await dying).toBe('broken');
    await server.exited;

    server = await startServer(dataDir);
    client = tusClient(`${server.url}/v1`);
    const url = `${server.url}${path}`;
    // The killed request's bytes were never acknowledged: the upload stands where the last answered PATCH left it.
    expect(await client.offset(url)).toBe(MIB);
    const last = await client.patch(url, MIB, file.slice(MIB));
    expect(last.status).toBe(204);
    const id = last.headers.get('X-Attachment-ID')!;
    const stored = await fetch(`${server.url}/v1/attachment?id=${id}`);
    const bytes = new Uint8Array(await stored.arrayBuffer());
    expect(bytes.byteLength).toBe(file.byteLength);
    expect(Buffer.from(bytes).equals(Buffer.from(file))).toBe(true);
    expect({ crc32: stored.headers.get('X-Attachment-CRC32'), sha256: stored.headers.get('X-Attachment-SHA256') }).toEqual(digestsOf(file));
    await stopServer(server);
  }, 60_000);
});
