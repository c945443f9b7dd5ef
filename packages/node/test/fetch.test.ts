// nodeFetch against real node:http servers on 127.0.0.1: what @attache/client
// needs from a fetch on Node (bounded streamed uploads, early answers, aborts).
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFetch, toWebRequest } from '../src/index.js';
import { deferred, delay, listen, settle, type Listening } from './servers.js';

const MiB = 1024 * 1024;
let listening: Listening | undefined;
afterEach(async () => {
  await listening?.close();
  listening = undefined;
});

/** `total` bytes of a pattern, pulled one 256 KiB chunk at a time; counts what was pulled and whether it was cancelled. */
function source(total: number) {
  const state = { pulled: 0, cancelled: false as unknown };
  const hash = createHash('sha256');
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (state.pulled >= total) return controller.close();
        const chunk = new Uint8Array(Math.min(256 * 1024, total - state.pulled)).fill(state.pulled % 251);
        hash.update(chunk);
        state.pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
      cancel(reason) {
        state.cancelled = reason ?? true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state, digest: () => hash.digest('hex') };
}

describe('nodeFetch', () => {
  it('streams a request body as the server reads it: the source is pulled only a little ahead', async () => {
    const stalled = deferred<void>();
    const received = deferred<string>();
    listening = await listen(async (req, res) => {
      await stalled.promise;
      const hash = createHash('sha256');
      for await (const chunk of req) hash.update(chunk as Buffer);
      received.resolve(hash.digest('hex'));
      res.end('ok');
    });
    const body = source(128 * MiB);
    const answer = nodeFetch(`${listening.url}/upload`, { method: 'POST', body: body.stream, duplex: 'half' } as RequestInit);
    await delay(500);
    const pulledWhileStalled = body.state.pulled;
    stalled.resolve();
    const response = await answer;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok');
    expect(await received.promise).toBe(body.digest());
    console.info(`nodeFetch: ${(pulledWhileStalled / MiB).toFixed(1)} MiB pulled while the server did not read`);
    // Socket buffers on both sides, not the body. (Node 20's own fetch pulls
    // as little here, yet its RSS still grows with the upload: the CLI test
    // measures that, packages/cli/test/client-commands.test.ts.)
    expect(pulledWhileStalled).toBeLessThan(16 * MiB);
  });

  it("returns the server's early answer (413, Connection: close) as the response and stops sending", async () => {
    listening = await listen(async (req, res) => {
      const request = toWebRequest(req, res);
      const reader = request.body!.getReader();
      await reader.read();
      reader.releaseLock();
      res.writeHead(413, { 'Content-Type': 'application/json', Connection: 'close' }).end('{"error":"attachment_too_large"}');
    });
    for (let round = 0; round < 5; round++) {
      const body = source(512 * MiB);
      const response = await nodeFetch(`${listening.url}/upload`, { method: 'POST', body: body.stream, duplex: 'half' } as RequestInit);
      expect(response.status).toBe(413);
      expect(response.headers.get('connection')).toBe('close');
      expect(await response.json()).toEqual({ error: 'attachment_too_large' });
      expect(body.state.cancelled).toBeInstanceOf(Error);
      expect(body.state.pulled).toBeLessThan(128 * MiB);
    }
  });

  it('sends bytes and strings with their length, answers HEAD without a body, and keeps repeated headers', async () => {
    listening = await listen(async (req, res) => {
      let text = '';
      for await (const chunk of req) text += (chunk as Buffer).toString();
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ method: req.method, length: req.headers['content-length'], type: req.headers['content-type'], auth: req.headers.authorization, text }));
    });
    const posted = await nodeFetch(`${listening.url}/x?y=1`, { method: 'POST', headers: { authorization: 'Bearer t' }, body: 'héllo' });
    expect(await posted.json()).toEqual({ method: 'POST', length: '6', type: 'text/plain;charset=UTF-8', auth: 'Bearer t', text: 'héllo' });
    expect(posted.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    const bytes = await nodeFetch(new URL(`${listening.url}/x`), { method: 'POST', body: new TextEncoder().encode('abc') });
    expect(await bytes.json()).toMatchObject({ length: '3', text: 'abc' });
    const head = await nodeFetch(`${listening.url}/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBeNull();
  });

  it('aborts: before the answer the call rejects with the reason; after it the body errors with the reason', async () => {
    listening = await listen(async (req, res) => {
      if (req.url === '/slow') return; // never answers
      res.writeHead(200);
      res.write('first');
      // …and never ends.
    });
    const early = new AbortController();
    const pending = settle(nodeFetch(`${listening.url}/slow`, { signal: early.signal }));
    await delay(50);
    const reason = new Error('stop');
    early.abort(reason);
    expect(await pending).toEqual({ ok: false, error: reason });

    const late = new AbortController();
    const response = await nodeFetch(`${listening.url}/stream`, { signal: late.signal });
    const reader = response.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('first');
    late.abort(reason);
    await expect(reader.read()).rejects.toBe(reason);
  });

  it('rejects a refused connection as fetch does (TypeError with the cause)', async () => {
    listening = await listen(() => {});
    const url = listening.url;
    await listening.close();
    listening = undefined;
    const result = await settle(nodeFetch(`${url}/x`));
    expect(result.ok).toBe(false);
    const error = (result as { error: TypeError & { cause?: { code?: string } } }).error;
    expect(error).toBeInstanceOf(TypeError);
    expect(error.cause?.code).toBe('ECONNREFUSED');
  });
});
