// Clients that misbehave against a real server (`serve()` in-process, real
// sockets): aborted uploads, lying Content-Length, wrong sizes and
// checksums, racing uploads and releases. Whatever the client does, nothing
// partial is ever kept or visible. The sweeper is set to an hour so every
// cleanup checked here is the immediate one, not a later sweep.
import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AttacheError } from '@attache/core';
import { DEFAULT_INLINE_BLOB_MAX_BYTES, resolveServeConfig, serve, type RunningServer } from '@attache/cli';
import {
  acquire,
  blobFiles,
  crc32Hex,
  leaseHeaders,
  listPublic,
  pattern,
  release,
  sha256Hex,
  sleep,
  sqliteBackend,
  storageProblems,
  tempFiles,
  uploadRaw,
  visibilityProblems,
  type Backend,
  type LeaseHandle,
} from './crash-harness.js';

let backend: Backend;
let server: RunningServer;

beforeEach(async () => {
  backend = await sqliteBackend();
  server = await serve(
    resolveServeConfig({ port: '0', 'data-dir': backend.dataDir }, { env: { ATTACHE_SWEEP_INTERVAL_SECONDS: '3600' } }),
  );
});

afterEach(async () => {
  await server.close({ timeoutMs: 1_000 });
  await backend.dispose();
});

/**
 * Waits until nothing of an interrupted upload is left: no staged row or
 * blob, no orphan, no temp file (the live lease's empty transaction is
 * fine). The server cleans up asynchronously after a socket dies, hence
 * the polling; the deadline is what makes a leak fail.
 */
async function expectNothingKept(): Promise<void> {
  await expectStorageSettles({ allowActiveTxns: true });
}

/**
 * Storage ends up whole: no orphan, no temp file. Polled for up to 5 s, since
 * the server promotes committed blobs and deletes garbage after it answers
 * (a promotion's copy is a temp file until it lands).
 */
async function expectStorageSettles(options: { allowActiveTxns?: boolean } = {}): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const problems = await storageProblems(backend, { maxTempFiles: 0, ...options });
    if (problems.length === 0) return;
    if (Date.now() > deadline) expect(problems).toEqual([]);
    await sleep(50);
  }
}

/** The lease still works after the misbehaviour, and committing it shows exactly `expected`. */
async function expectCommitShows(lease: LeaseHandle, expected: ReadonlyMap<string, Uint8Array>): Promise<void> {
  expect((await release(server.url, lease)).status).toBe(200);
  expect(await visibilityProblems(server.url, lease.key, expected)).toEqual([]);
  await expectStorageSettles();
}

// ---------------------------------------------------------------------------
// Raw sockets: the only way to send what fetch refuses to (lies, half bodies)

interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far. */
  received: () => string;
  /** Resolves when the server closed the connection (or it errored). */
  closed: Promise<void>;
}

async function openRaw(): Promise<RawConnection> {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1').on('data', (text: string) => (received += text));
  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => received, closed };
}

function write(socket: Socket, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (error) => (error ? reject(error) : resolve())));
}

function requestHead(path: string, headers: Record<string, string>): string {
  const lines = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function uploadPath(lease: LeaseHandle, name?: string): string {
  const query = new URLSearchParams({ key: lease.key });
  if (name !== undefined) query.set('name', name);
  return `/v1/attachments?${query}`;
}

/** Status codes of the HTTP responses in `text`, in order. */
function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) => Number(match[1]));
}

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const serverIsWriting = async () => (await tempFiles(backend.dataDir)).length > 0;

describe('a client that aborts mid-upload', () => {
  it('leaves nothing of a raw body, and the lease keeps working', async () => {
    const lease = await acquire(server.url, 'abort/raw', 30);
    const connection = await openRaw();
    await write(
      connection.socket,
      requestHead(uploadPath(lease, 'big.bin'), {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(4 * 1024 * 1024),
        ...leaseHeaders(lease),
      }),
    );
    await write(connection.socket, pattern(512 * 1024, 1));
    await waitUntil(serverIsWriting, 'the server to start writing the upload');
    connection.socket.destroy();
    await expectNothingKept();

    const after = pattern(1000, 2);
    expect((await uploadRaw(server.url, lease, 'after.bin', after)).status).toBe(200);
    await expectCommitShows(lease, new Map([['after.bin', after]]));
  });

  it('leaves nothing of a multipart body, not even its complete first part', async () => {
    const lease = await acquire(server.url, 'abort/multipart', 30);
    const boundary = 'attache-test-boundary';
    const firstPart = pattern(300 * 1024, 3);
    const connection = await openRaw();
    await write(
      connection.socket,
      requestHead(uploadPath(lease), {
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Transfer-Encoding': 'chunked',
        ...leaseHeaders(lease),
      }),
    );
    const chunk = async (data: string | Uint8Array) => {
      const size = typeof data === 'string' ? Buffer.byteLength(data, 'latin1') : data.byteLength;
      await write(connection.socket, `${size.toString(16)}\r\n`);
      await write(connection.socket, data);
      await write(connection.socket, '\r\n');
    };
    const partHead = (name: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    await chunk(partHead('one.bin'));
    await chunk(firstPart);
    await chunk(`\r\n${partHead('two.bin')}`);
    await chunk(pattern(200 * 1024, 4));
    // The first part is a complete staged blob by now; the second is being written.
    await waitUntil(
      async () => (await blobFiles(backend.dataDir)).length === 1 && (await serverIsWriting()),
      'the first part staged and the second being written',
    );
    connection.socket.destroy();
    await expectNothingKept();
    await expectCommitShows(lease, new Map());
  });
});

describe('a slow-loris client', () => {
  it('that stalls mid-body is cut off by the idle timeout, and nothing of its upload is kept', async () => {
    await server.close({ timeoutMs: 1_000 });
    server = await serve(
      resolveServeConfig(
        { port: '0', 'data-dir': backend.dataDir },
        { env: { ATTACHE_SWEEP_INTERVAL_SECONDS: '3600', ATTACHE_IDLE_TIMEOUT_SECONDS: '1' } },
      ),
    );
    const lease = await acquire(server.url, 'slow/loris', 60);
    const connection = await openRaw();
    await write(
      connection.socket,
      requestHead(uploadPath(lease, 'slow.bin'), {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(1024 * 1024),
        ...leaseHeaders(lease),
      }),
    );
    // More than a small blob (kept in memory, then inline): the upload is written to a file.
    await write(connection.socket, pattern(DEFAULT_INLINE_BLOB_MAX_BYTES + 64 * 1024, 3));
    await waitUntil(serverIsWriting, 'the server to start writing the upload');
    const stalledAt = Date.now();
    // The client now sends nothing more; the server must hang up by itself.
    await connection.closed;
    const cutAfter = Date.now() - stalledAt;
    expect(cutAfter).toBeGreaterThanOrEqual(800);
    expect(cutAfter).toBeLessThan(5_000);
    expect(statuses(connection.received()).filter((status) => status < 300)).toEqual([]);
    await expectNothingKept();
    const after = pattern(100, 4);
    expect((await uploadRaw(server.url, lease, 'after.bin', after)).status).toBe(200);
    await expectCommitShows(lease, new Map([['after.bin', after]]));
  });

  it('that never finishes its headers is cut off too', async () => {
    await server.close({ timeoutMs: 1_000 });
    server = await serve(
      resolveServeConfig(
        { port: '0', 'data-dir': backend.dataDir },
        { env: { ATTACHE_SWEEP_INTERVAL_SECONDS: '3600', ATTACHE_IDLE_TIMEOUT_SECONDS: '1' } },
      ),
    );
    const connection = await openRaw();
    await write(connection.socket, 'POST /v1/attachments?key=a HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const started = Date.now();
    await connection.closed;
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('a client that lies about Content-Length', () => {
  it('shorter than the body, all in one packet: the HTTP parser answers 400 and hangs up; nothing kept', async () => {
    const lease = await acquire(server.url, 'lie/shorter', 30);
    const connection = await openRaw();
    const head = requestHead(uploadPath(lease, 'short.bin'), { 'Content-Length': '10', ...leaseHeaders(lease) });
    // The 20 bytes beyond the declared 10 parse as a malformed next request.
    await write(connection.socket, Buffer.concat([Buffer.from(head, 'latin1'), pattern(30, 5)]));
    await connection.closed;
    expect(statuses(connection.received())).toEqual([400]);
    await expectNothingKept();
    await expectCommitShows(lease, new Map());
  });

  it('shorter than the body, with the real body\'s CRC-32: the framed part fails checksum_mismatch; nothing kept', async () => {
    const lease = await acquire(server.url, 'lie/shorter-checked', 30);
    const body = pattern(30, 6);
    const connection = await openRaw();
    const head = requestHead(uploadPath(lease, 'short.bin'), {
      'Content-Length': '10',
      'X-Attachment-CRC32': crc32Hex(body),
      ...leaseHeaders(lease),
    });
    // The declared part first, and only once it was answered the rest: the
    // server cannot tell this from a 10-byte upload, except by its checksum.
    await write(connection.socket, Buffer.concat([Buffer.from(head, 'latin1'), body.subarray(0, 10)]));
    await waitUntil(async () => statuses(connection.received()).length > 0, 'the answer to the framed request');
    expect(connection.received()).toContain('checksum_mismatch');
    await write(connection.socket, body.subarray(10)).catch(() => {});
    connection.socket.end();
    await connection.closed;
    for (const status of statuses(connection.received())) expect(status).toBe(400);
    await expectNothingKept();
    await expectCommitShows(lease, new Map());
  });

  it('longer than the body, then the client hangs up: no 2xx and nothing kept', async () => {
    const lease = await acquire(server.url, 'lie/longer', 30);
    const connection = await openRaw();
    await write(
      connection.socket,
      requestHead(uploadPath(lease, 'short.bin'), { 'Content-Length': String(DEFAULT_INLINE_BLOB_MAX_BYTES + 100_000), ...leaseHeaders(lease) }),
    );
    // Past the small-blob threshold, so the server is writing a file when the client goes.
    await write(connection.socket, pattern(DEFAULT_INLINE_BLOB_MAX_BYTES + 30_000, 6));
    await waitUntil(serverIsWriting, 'the server to start writing the upload');
    connection.socket.end();
    await connection.closed;
    // Either no response at all (connection closed) or an error status.
    for (const status of statuses(connection.received())) expect(status).toBeGreaterThanOrEqual(400);
    await expectNothingKept();
    await expectCommitShows(lease, new Map());
  });
});

describe('integrity checks', () => {
  it('create() with fewer or more bytes than sizeBytes rejects size_mismatch and keeps nothing', async () => {
    for (const written of [500, 1500]) {
      const handle = server.store.create({ mimeType: 'application/octet-stream', fileName: `doc-${written}.bin`, sizeBytes: 1000 });
      const writer = handle.sink.getWriter();
      // The sink may error as soon as the engine sees the mismatch; that is part of the contract.
      await writer.write(pattern(written, written)).catch(() => {});
      await writer.close().catch(() => {});
      const failure = await handle.done.then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(AttacheError);
      expect((failure as AttacheError).code).toBe('size_mismatch');
      await expect(server.store.stat(handle.attachmentId)).rejects.toMatchObject({ code: 'attachment_not_found' });
    }
    await expectStorageSettles();
    expect(await blobFiles(backend.dataDir)).toEqual([]);
  });

  it('a wrong X-Attachment-CRC32 or Content-Digest answers 400 checksum_mismatch and keeps nothing', async () => {
    const lease = await acquire(server.url, 'integrity/checksum', 30);
    const body = pattern(64 * 1024, 7);
    const wrongSha = Buffer.from(sha256Hex(pattern(10, 8)), 'hex').toString('base64');
    const attempts: Array<Record<string, string>> = [
      { 'x-attachment-crc32': crc32Hex(body) === '00000000' ? '00000001' : '00000000' },
      { 'content-digest': `sha-256=:${wrongSha}:` },
    ];
    for (const checksum of attempts) {
      const response = await fetch(`${server.url}${uploadPath(lease, 'x.bin')}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', ...leaseHeaders(lease), ...checksum },
        body,
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe('checksum_mismatch');
      await expectNothingKept();
    }
    // The right checksums pass, so the refusals above were about the values.
    const rightSha = Buffer.from(sha256Hex(body), 'hex').toString('base64');
    const accepted = await fetch(`${server.url}${uploadPath(lease, 'x.bin')}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        ...leaseHeaders(lease),
        'x-attachment-crc32': crc32Hex(body),
        'content-digest': `sha-256=:${rightSha}:`,
      },
      body,
    });
    expect(accepted.status).toBe(200);
    await expectCommitShows(lease, new Map([['x.bin', body]]));
  });
});

describe('concurrency within one lease', () => {
  it('parallel uploads of one name in one transaction commit exactly one whole version', async () => {
    const lease = await acquire(server.url, 'parallel/same-name', 30);
    const bodies = Array.from({ length: 8 }, (_, i) => pattern(32 * 1024 + i * 40_000, 100 + i));
    const responses = await Promise.all(bodies.map((body) => uploadRaw(server.url, lease, 'same.bin', body)));
    expect(responses.map((response) => response.status)).toEqual(bodies.map(() => 200));
    expect((await release(server.url, lease)).status).toBe(200);

    const listed = await listPublic(server.url, lease.key);
    expect(listed.map((entry) => entry.name)).toEqual(['same.bin']);
    const winner = bodies.find((body) => sha256Hex(body) === listed[0]!.sha256);
    expect(winner).toBeDefined();
    expect(await visibilityProblems(server.url, lease.key, new Map([['same.bin', winner!]]))).toEqual([]);
    const rows = await backend.metadata.attachmentRows();
    expect(rows.map((row) => [row.name, row.state])).toEqual([['same.bin', 'committed']]);
    // The losers' staged blobs were collected at once (no sweep runs in this test).
    await waitUntil(async () => (await storageProblems(backend, { maxTempFiles: 0 })).length === 0, 'losers collected');
  });

  it('a release racing an upload in flight either includes the whole upload or fails it (20 rounds)', async () => {
    const outcomes = { included: 0, refused: 0 };
    for (let round = 0; round < 20; round++) {
      const lease = await acquire(server.url, `race/${round}`, 30);
      const bytes = pattern(64 * 1024 + round * 37_000, 200 + round);
      // Streamed in 16 KiB chunks with a pause every few, so the release can land at any point of it.
      const chunkSize = 16 * 1024;
      let offset = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (offset >= bytes.byteLength) return controller.close();
          if ((offset / chunkSize) % 4 === 3) await sleep(1);
          controller.enqueue(bytes.slice(offset, offset + chunkSize));
          offset += chunkSize;
        },
      });
      const upload = fetch(`${server.url}${uploadPath(lease, 'raced.bin')}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', ...leaseHeaders(lease) },
        body,
        duplex: 'half',
      } as RequestInit).then(
        async (response) => ({ status: response.status, text: await response.text() }),
        (error: unknown) => ({ status: 0, text: String(error) }),
      );
      // From "before the body started" to "after it finished" on a quiet machine: both outcomes occur.
      await sleep(round * 4);
      const released = await release(server.url, lease);
      expect(released.status).toBe(200);
      const result = await upload;

      const expected = new Map<string, Uint8Array>();
      if (result.status === 200) {
        expected.set('raced.bin', bytes);
        outcomes.included += 1;
      } else {
        // Refused because the lease ended under it (or the connection was cut), never a server error.
        expect(result.status === 0 || (result.status >= 400 && result.status < 500), result.text).toBe(true);
        outcomes.refused += 1;
      }
      expect(await visibilityProblems(server.url, lease.key, expected)).toEqual([]);
    }
    await waitUntil(async () => (await storageProblems(backend, { maxTempFiles: 0 })).length === 0, 'refused uploads cleaned up');
    console.log(`release vs upload race: ${outcomes.included} included whole, ${outcomes.refused} refused`);
  });
});
