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
});
