// Web `Response` → Node `ServerResponse`, for every Node adapter.
//
// The body is written chunk by chunk; when `res.write()` reports a full
// socket buffer we wait for 'drain' before reading the next chunk, so a slow
// client slows the source (a file read, a blob download) instead of filling
// memory. A client that goes away cancels the source.
import type { ServerResponse } from 'node:http';

/**
 * Sends `response` on `res`. Resolves once the body is fully written, or
 * once the client went away (or `signal` aborted) and the body was cancelled.
 * Rejects with the body's error if the body fails after the headers were
 * sent; the connection is destroyed then, so the client sees a broken
 * response rather than a complete-looking short one.
 */
export async function sendWebResponse(res: ServerResponse, response: Response, signal?: AbortSignal): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  for (const [name, value] of response.headers) {
    // Set-Cookie values must stay separate lines (they may contain commas).
    if (name === 'set-cookie') continue;
    res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader('Set-Cookie', cookies);

  const body = response.body;
  if (body === null) {
    await endResponse(res);
    return;
  }
  const reader = body.getReader();
  let stopped = false;
  // Cancelling the reader also ends a pending read() with `done`, which ends the loop below.
  const stop = (reason: unknown) => {
    if (stopped) return;
    stopped = true;
    reader.cancel(reason).catch(() => {});
    if (!res.writableEnded) res.destroy();
  };
  const onClose = () => {
    if (!res.writableFinished) stop(new Error('the client disconnected before the response was complete'));
  };
  const onAbort = () => stop(signal?.reason);
  res.once('close', onClose);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (stopped) return;
      if (done) break;
      if (!res.write(value)) await drainedOrClosed(res);
    }
    await endResponse(res);
  } catch (error) {
    if (stopped) return;
    stopped = true;
    res.destroy(error instanceof Error ? error : new Error(String(error)));
    throw error;
  } finally {
    res.off('close', onClose);
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    // A closed connection never drains; the 'close' listener above has stopped the body.
    res.once('close', done);
  });
}

function endResponse(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    if (res.destroyed) {
      resolve();
      return;
    }
    const done = () => {
      res.off('close', done);
      resolve();
    };
    // end()'s callback does not run if the connection drops first.
    res.once('close', done);
    res.end(done);
  });
}
