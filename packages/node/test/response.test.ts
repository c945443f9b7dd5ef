// sendWebResponse over real `node:http` servers on 127.0.0.1.
import { get as httpGet, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { sendWebResponse } from '../src/index.js';
import { deferred, delay, getRaw, listen, readAll, settle, type Listening } from './servers.js';

const MiB = 1024 * 1024;
let listening: Listening | undefined;
afterEach(async () => {
  await listening?.close();
  listening = undefined;
});


/** A lazily produced body of `total` bytes in `chunkSize` chunks that records how far it was pulled. */
function meteredBody(total: number, chunkSize = 64 * 1024) {
  let pulled = 0;
  let cancelled: unknown = undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (pulled >= total) {
          controller.close();
          return;
        }
        const size = Math.min(chunkSize, total - pulled);
        pulled += size;
        controller.enqueue(new Uint8Array(size).fill(pulled % 251));
      },
      cancel(reason) {
        cancelled = reason ?? 'cancelled';
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: () => pulled, cancelled: () => cancelled };
}

describe('sendWebResponse', () => {
  it('sends status, status text and headers, keeping each Set-Cookie on its own line', async () => {
    listening = await listen(async (_req, res) => {
      const headers = new Headers({ 'Content-Type': 'application/json; charset=utf-8', 'X-Attachment-ID': 'abc' });
      headers.append('Set-Cookie', 'a=1; Path=/; Expires=Wed, 21 Oct 2015 07:28:00 GMT');
      headers.append('Set-Cookie', 'b=2');
      await sendWebResponse(res, new Response('{"ok":true}', { status: 201, statusText: 'Made It', headers }));
    });
    const response = await getRaw(`${listening.url}/`);
    expect(response.statusCode).toBe(201);
    expect(response.statusMessage).toBe('Made It');
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(response.headers['x-attachment-id']).toBe('abc');
    expect(response.headers['set-cookie']).toEqual(['a=1; Path=/; Expires=Wed, 21 Oct 2015 07:28:00 GMT', 'b=2']);
    expect((await readAll(response)).toString()).toBe('{"ok":true}');
  });

  it('ends a bodiless response (304, HEAD-style) without a body', async () => {
    listening = await listen(async (_req, res) => {
      await sendWebResponse(res, new Response(null, { status: 304, headers: { ETag: '"x"' } }));
    });
    const response = await fetch(`${listening.url}/`);
    expect(response.status).toBe(304);
    expect(response.headers.get('ETag')).toBe('"x"');
    expect(await response.text()).toBe('');
  });

  it('streams the body chunk by chunk as the source produces it', async () => {
    const release = deferred<void>();
    listening = await listen(async (_req, res) => {
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode('first;'));
          await release.promise;
          controller.enqueue(new TextEncoder().encode('second'));
          controller.close();
        },
      });
      await sendWebResponse(res, new Response(body));
    });
    const response = await getRaw(`${listening.url}/`);
    // The first chunk arrives while the source still holds back the second.
    const first = await new Promise<Buffer>((resolve) => response.once('data', resolve));
    expect(first.toString()).toBe('first;');
    release.resolve();
    expect((await readAll(response)).toString()).toBe('second');
  });

  it('waits for drain: a client that stops reading stops the source, and gets every byte once it reads again', async () => {
    const total = 64 * MiB;
    const source = meteredBody(total);
    const sent = deferred<void>();
    listening = await listen(async (_req, res) => {
      await sendWebResponse(res, new Response(source.stream));
      sent.resolve();
    });
    const response = await getRaw(`${listening.url}/`);
    response.pause(); // the client reads nothing for a while
    await delay(500);
    const early = source.pulled();
    await delay(500);
    const late = source.pulled();
    console.info(`response drain: source pulled ${(late / MiB).toFixed(2)} MiB of 64 MiB while the client did not read`);
    expect(late).toBeLessThan(8 * MiB);
    expect(late - early).toBeLessThanOrEqual(128 * 1024);
    response.resume();
    let received = 0;
    for await (const chunk of response) received += (chunk as Buffer).byteLength;
    await sent.promise;
    expect(received).toBe(total);
  });

  it('cancels the source and resolves when the client goes away mid-body', async () => {
    const source = meteredBody(64 * MiB);
    const outcome = deferred<Awaited<ReturnType<typeof settle>>>();
    listening = await listen(async (_req, res) => {
      outcome.resolve(await settle(sendWebResponse(res, new Response(source.stream))));
    });
    const request = httpGet(`${listening.url}/`);
    request.on('error', () => {});
    const response = await new Promise<IncomingMessage>((resolve) => request.on('response', resolve));
    response.pause();
    await delay(100);
    request.destroy();
    expect((await outcome.promise).ok).toBe(true);
    expect(source.cancelled()).toBeDefined();
    expect(source.pulled()).toBeLessThan(64 * MiB);
  });

  it('cancels the source and drops the connection when the signal aborts', async () => {
    const source = meteredBody(64 * MiB);
    const controller = new AbortController();
    listening = await listen(async (_req, res) => {
      await sendWebResponse(res, new Response(source.stream), controller.signal);
    });
    const response = await getRaw(`${listening.url}/`);
    response.pause();
    await delay(100);
    controller.abort(new Error('shutting down'));
    const read = await settle(readAll(response.resume()));
    expect(read.ok).toBe(false);
    expect(source.cancelled()).toBeInstanceOf(Error);
  });

  it('rejects and breaks the connection when the body fails after the headers went out', async () => {
    const outcome = deferred<Awaited<ReturnType<typeof settle>>>();
    listening = await listen(async (_req, res) => {
      let step = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          step += 1;
          if (step === 1) controller.enqueue(new TextEncoder().encode('partial'));
          else controller.error(new Error('disk on fire'));
        },
      });
      outcome.resolve(await settle(sendWebResponse(res, new Response(body, { headers: { 'Content-Length': '100' } }))));
    });
    // The client sees a broken connection (before or after the headers), never a complete response.
    const read = await settle(getRaw(`${listening.url}/`).then(readAll));
    expect(read.ok).toBe(false);
    const sent = await outcome.promise;
    expect(sent.ok).toBe(false);
    expect(sent.ok ? undefined : (sent.error as Error).message).toBe('disk on fire');
  });
});
