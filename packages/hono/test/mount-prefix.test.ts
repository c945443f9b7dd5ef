// mountPrefixOf(): the one conversion this adapter owns. Real Hono apps,
// driven with app.request(); the HTTP tests cover the same over sockets.
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { mountPrefixOf } from '../src/mount-prefix.js';

function probe(): Hono {
  const reporter = new Hono();
  reporter.all('/*', (c) => c.text(`[${mountPrefixOf(c)}]`));
  return reporter;
}

async function prefixSeen(app: Hono, path: string): Promise<string> {
  const response = await app.request(`http://attache.test${path}`);
  expect(response.status, path).toBe(200);
  return response.text();
}

describe('mountPrefixOf', () => {
  it('is the static mount path, whatever follows it', async () => {
    const app = new Hono().route('/v1', probe());
    for (const path of ['/v1', '/v1/', '/v1/attachments', '/v1/attachments/', '/v1/a/b/c', '/v1/caf%C3%A9?x=/y']) {
      expect(await prefixSeen(app, path), path).toBe('[/v1]');
    }
  });

  it('is empty when the routes are the app itself', async () => {
    expect(await prefixSeen(probe(), '/healthz')).toBe('[]');
    expect(await prefixSeen(new Hono().route('/', probe()), '/attachments')).toBe('[]');
  });

  it('joins nested route() and basePath() prefixes', async () => {
    const parent = new Hono().route('/v1', probe());
    const app = new Hono().basePath('/edge').route('/api', parent);
    expect(await prefixSeen(app, '/edge/api/v1/attachments')).toBe('[/edge/api/v1]');
  });

  it('fills in parameters exactly as the client spelled them (percent-encoding kept)', async () => {
    const app = new Hono().route('/:tenant/v1', probe());
    expect(await prefixSeen(app, '/acme/v1/healthz')).toBe('[/acme/v1]');
    expect(await prefixSeen(app, '/t%C3%A9nant/v1/healthz')).toBe('[/t%C3%A9nant/v1]');
    expect(await prefixSeen(app, '/a%2Fb/v1/healthz')).toBe('[/a%2Fb/v1]');
  });

  it('handles parameters with a pattern', async () => {
    const app = new Hono().route('/orgs/:org{[a-z]+}/files', probe());
    expect(await prefixSeen(app, '/orgs/acme/files/attachment')).toBe('[/orgs/acme/files]');
  });
});
