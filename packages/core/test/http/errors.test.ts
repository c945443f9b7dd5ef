import { afterEach, describe, expect, it, vi } from 'vitest';
import { AttacheError, ERROR_STATUS, type ErrorCode } from '../../src/errors.js';
import { errorResponse } from '../../src/http/errors.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('errorResponse', () => {
  it('answers every AttacheError code with its status and a JSON body', async () => {
    for (const code of Object.keys(ERROR_STATUS) as ErrorCode[]) {
      const response = errorResponse(new AttacheError(code, `because ${code}`));
      expect(response.status, code).toBe(ERROR_STATUS[code]);
      expect(response.headers.get('Content-Type')).toBe('application/json; charset=utf-8');
      expect(await response.json()).toEqual({ error: code, detail: `because ${code}` });
    }
  });

  it('adds Retry-After (whole seconds, at least 1) and retry_after_seconds', async () => {
    const response = errorResponse(new AttacheError('waiting', 'held', { retryAfterSeconds: 0.2 }));
    expect(response.headers.get('Retry-After')).toBe('1');
    expect(await response.json()).toEqual({ error: 'waiting', detail: 'held', retry_after_seconds: 1 });
  });

  it('challenges with WWW-Authenticate on 401 and keeps extra headers', () => {
    expect(errorResponse(new AttacheError('unauthorized', 'no')).headers.get('WWW-Authenticate')).toBe('Bearer');
    const response = errorResponse(new AttacheError('method_not_allowed', 'no'), { headers: { Allow: 'GET' } });
    expect(response.headers.get('Allow')).toBe('GET');
  });

  it('hides anything else behind a generic 500, logging it once (unless quiet)', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const secret = new Error('ENOENT /var/lib/attache/state/secret');
    const response = errorResponse(secret);
    expect(response.status).toBe(500);
    const body = await response.text();
    expect(body).not.toContain('secret');
    expect(body).not.toContain('at ');
    expect(JSON.parse(body)).toEqual({ error: 'internal', detail: 'internal server error' });
    expect(logged).toHaveBeenCalledTimes(1);
    errorResponse('a string', { quiet: true });
    expect(logged).toHaveBeenCalledTimes(1);
  });

  it('logs a 503 that has a cause once, in one line naming the cause, and not again for each request', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const cause = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const outage = () => new AttacheError('unavailable', 'blob storage is full (test); retry later', { retryAfterSeconds: 10, cause });
    for (let request = 0; request < 5; request++) {
      const response = errorResponse(outage());
      expect(response.status).toBe(503);
      expect(response.headers.get('Retry-After')).toBe('10');
      expect(await response.text()).not.toContain('ENOSPC: no space');
    }
    expect(logged).toHaveBeenCalledTimes(1);
    const line = String(logged.mock.calls[0]?.[0]);
    expect(line).not.toContain('\n');
    expect(line).toContain('blob storage is full (test)');
    expect(line).toContain('ENOSPC: no space left on device, write');
    // Without a cause (a concurrency limit, a closed store) there is nothing to tell the operator.
    errorResponse(new AttacheError('unavailable', 'too many uploads', { retryAfterSeconds: 1 }));
    expect(logged).toHaveBeenCalledTimes(1);
  });
});
