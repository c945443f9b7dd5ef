// The handler's `cors` option over real HTTP (core's bare handler on
// @hono/node-server): preflights answered for allowed origins (tus discovery
// kept), answers readable by them, other origins left without CORS headers.
import { afterEach, describe, expect, it } from 'vitest';
import { patternBytes } from '../../../testing/src/tus-suite.js';
import { createHandler, CORS_ALLOWED_HEADERS, type CorsOptions } from '../../src/http/index.js';
import { memoryBlobs } from '../../src/memory/blobs.js';
import { memoryMetadata } from '../../src/memory/metadata.js';
import { createAttachmentStore } from '../../src/store.js';
import type { AttachmentStore } from '../../src/types.js';
import { mountHandler, type MountedHandler } from './server.js';

const APP = 'http://app.example.test:5173';
const TOKEN = 'cors-test-token';
const TUS = { 'Tus-Resumable': '1.0.0' };
/** What tus-js-client sends on a creation, lease headers included (lower-case, as browsers list them). */
const TUS_CREATION_HEADERS = 'content-type,tus-resumable,upload-length,upload-metadata,x-fencing-token,x-lease-id,x-txn-id';

let mounted: MountedHandler | undefined;
let store: AttachmentStore | undefined;
afterEach(async () => {
  await mounted?.close();
  await store?.close();
  mounted = store = undefined;
});

async function serve(cors?: CorsOptions, token?: string): Promise<string> {
  store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs(), maxBytes: 1024 * 1024 });
  mounted = await mountHandler({ store, ...(cors === undefined ? {} : { cors }), ...(token === undefined ? {} : { token }) });
  return mounted.baseUrl;
}

const preflight = (url: string, origin: string, method: string, headers = TUS_CREATION_HEADERS) =>
  fetch(url, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers } });

const listed = (value: string | null) => (value ?? '').split(',').map((item) => item.trim().toLowerCase()).filter((item) => item !== '');

describe('CORS (the handler option `cors`)', () => {
  it('answers a preflight from an allowed origin before authentication, allowing the tus and lease headers, with tus discovery kept', async () => {
    const baseUrl = await serve({ origins: [APP] }, TOKEN);
    const answer = await preflight(`${baseUrl}/uploads`, APP, 'POST');
    expect(answer.status).toBe(204);
    expect(answer.headers.get('Access-Control-Allow-Origin')).toBe(APP);
    expect(answer.headers.get('Access-Control-Allow-Credentials')).toBeNull();
    expect(listed(answer.headers.get('Access-Control-Allow-Methods'))).toEqual(expect.arrayContaining(['post', 'patch', 'head', 'delete', 'get']));
    expect(listed(answer.headers.get('Access-Control-Allow-Headers'))).toEqual(expect.arrayContaining([...listed(TUS_CREATION_HEADERS), 'authorization', 'upload-offset', 'upload-checksum']));
    expect(answer.headers.get('Access-Control-Max-Age')).toBe('600');
    expect(listed(answer.headers.get('Vary'))).toContain('origin');
    expect(answer.headers.get('Tus-Version')).toBe('1.0.0');
    expect(answer.headers.get('Tus-Max-Size')).toBe(String(1024 * 1024));

    // A member's PATCH, and a non-tus route: answered too.
    expect((await preflight(`${baseUrl}/uploads/${'0'.repeat(26)}`, APP, 'PATCH', 'content-type,tus-resumable,upload-offset')).status).toBe(204);
    const release = await preflight(`${baseUrl}/release`, APP, 'POST', 'authorization,content-type,x-lease-id');
    expect(release.status).toBe(204);
    expect(release.headers.get('Access-Control-Allow-Origin')).toBe(APP);
  });

  it('lets an allowed origin read a tus upload\'s Location, Upload-Offset and attachment id, and the answers of its mistakes', async () => {
    const baseUrl = await serve({ origins: ['https://other.example.test', APP] }, TOKEN);
    const authorized = { Origin: APP, Authorization: `Bearer ${TOKEN}`, ...TUS };
    const bytes = patternBytes(1000);
    const created = await fetch(`${baseUrl}/uploads`, {
      method: 'POST',
      headers: { ...authorized, 'Upload-Length': String(bytes.byteLength), 'Upload-Metadata': `filename ${btoa('a.bin')}` },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('Access-Control-Allow-Origin')).toBe(APP);
    expect(listed(created.headers.get('Access-Control-Expose-Headers'))).toEqual(
      expect.arrayContaining(['location', 'upload-offset', 'upload-expires', 'tus-resumable', 'x-attachment-id', 'x-attachment-sha256', 'x-attachment-crc32']),
    );
    expect(listed(created.headers.get('Vary'))).toContain('origin');
    const patched = await fetch(new URL(created.headers.get('Location')!, baseUrl), {
      method: 'PATCH',
      headers: { ...authorized, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: bytes,
    });
    expect(patched.status).toBe(204);
    expect(patched.headers.get('Access-Control-Allow-Origin')).toBe(APP);
    expect(patched.headers.get('Upload-Offset')).toBe('1000');
    const id = patched.headers.get('X-Attachment-ID')!;
    const download = await fetch(`${baseUrl}/attachment?id=${id}`, { headers: { Origin: APP, Authorization: `Bearer ${TOKEN}` } });
    expect(download.headers.get('Access-Control-Allow-Origin')).toBe(APP);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);

    // Errors are readable too: a missing token.
    const unauthorized = await fetch(`${baseUrl}/uploads`, { method: 'POST', headers: { Origin: APP, ...TUS, 'Upload-Length': '1' } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('Access-Control-Allow-Origin')).toBe(APP);
    expect(await unauthorized.json()).toMatchObject({ error: 'unauthorized' });
  });

  it("adds its headers to an authorize hook's own answer too, even one whose headers cannot change (Response.redirect)", async () => {
    store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs() });
    mounted = await mountHandler({ store, cors: { origins: [APP] }, authorize: () => Response.redirect('https://login.example.test/', 302) });
    const answer = await fetch(`${mounted.baseUrl}/attachments?key=k`, { headers: { Origin: APP }, redirect: 'manual' });
    expect(answer.status).toBe(302);
    expect(answer.headers.get('Location')).toBe('https://login.example.test/');
    expect(answer.headers.get('Access-Control-Allow-Origin')).toBe(APP);
  });

  it('answers other origins as before, without CORS headers: a preflight gets the route\'s own OPTIONS answer', async () => {
    const baseUrl = await serve({ origins: [APP] });
    const toUploads = await preflight(`${baseUrl}/uploads`, 'https://elsewhere.example.test', 'POST');
    expect(toUploads.status).toBe(204);
    expect(toUploads.headers.get('Tus-Version')).toBe('1.0.0');
    expect(toUploads.headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect(toUploads.headers.get('Access-Control-Allow-Headers')).toBeNull();
    const toRelease = await preflight(`${baseUrl}/release`, 'https://elsewhere.example.test', 'POST');
    expect(toRelease.status).toBe(405);
    expect(toRelease.headers.get('Access-Control-Allow-Origin')).toBeNull();
    const health = await fetch(`${baseUrl}/healthz`, { headers: { Origin: 'https://elsewhere.example.test' } });
    expect(health.headers.get('Access-Control-Allow-Origin')).toBeNull();
    // The answer depends on the origin: caches must keep them apart.
    expect(listed(health.headers.get('Vary'))).toContain('origin');
  });

  it('keeps tus discovery for an OPTIONS that is not a preflight, and adds the CORS headers for an allowed origin', async () => {
    const baseUrl = await serve({ origins: [APP] });
    const discovery = await fetch(`${baseUrl}/uploads`, { method: 'OPTIONS', headers: { Origin: APP } });
    expect(discovery.status).toBe(204);
    expect(discovery.headers.get('Tus-Extension')).toBe('creation,creation-with-upload,termination,checksum,expiration');
    expect(discovery.headers.get('Access-Control-Allow-Origin')).toBe(APP);
    expect(discovery.headers.get('Access-Control-Allow-Methods')).toBeNull();
  });

  it("answers any origin with '*' when origins is '*' (no Vary needed), and names the origin with credentials", async () => {
    let baseUrl = await serve({ origins: '*' });
    const anyOrigin = await preflight(`${baseUrl}/uploads`, 'https://anyone.example.test', 'POST');
    expect(anyOrigin.headers.get('Access-Control-Allow-Origin')).toBe('*');
    expect(anyOrigin.headers.get('Vary')).toBeNull();
    const created = await fetch(`${baseUrl}/uploads`, {
      method: 'POST',
      headers: { Origin: 'https://anyone.example.test', ...TUS, 'Upload-Length': '1', 'Upload-Metadata': `filename ${btoa('b.bin')}` },
    });
    expect(created.headers.get('Access-Control-Allow-Origin')).toBe('*');
    await mounted!.close();
    await store!.close();

    baseUrl = await serve({ origins: [APP], credentials: true, maxAgeSeconds: 60 });
    const withCredentials = await preflight(`${baseUrl}/uploads`, APP, 'POST');
    expect(withCredentials.headers.get('Access-Control-Allow-Origin')).toBe(APP);
    expect(withCredentials.headers.get('Access-Control-Allow-Credentials')).toBe('true');
    expect(withCredentials.headers.get('Access-Control-Max-Age')).toBe('60');
  });

  it('sends no CORS headers without the option (a preflight gets tus discovery, as before)', async () => {
    const baseUrl = await serve();
    const answer = await preflight(`${baseUrl}/uploads`, APP, 'POST');
    expect(answer.status).toBe(204);
    expect(answer.headers.get('Tus-Version')).toBe('1.0.0');
    expect([...answer.headers.keys()].filter((name) => name.startsWith('access-control-'))).toEqual([]);
    expect(answer.headers.get('Vary')).toBeNull();
  });

  it('refuses a policy browsers could not match, or one that lends credentials to every origin, when the handler is created', () => {
    const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs() });
    expect(() => createHandler({ store, cors: { origins: [`${APP}/`] } })).toThrow(`did you mean "${APP}"?`);
    expect(() => createHandler({ store, cors: { origins: ['https://app.example.test/upload'] } })).toThrow(/not an origin/);
    expect(() => createHandler({ store, cors: { origins: ['app.example.test'] } })).toThrow(/not an origin/);
    expect(() => createHandler({ store, cors: { origins: '*', credentials: true } })).toThrow(/credentials/);
    expect(() => createHandler({ store, cors: { origins: [APP], maxAgeSeconds: -1 } })).toThrow(/maxAgeSeconds/);
    // Every header the API reads is listed once.
    expect(new Set(CORS_ALLOWED_HEADERS.map((name) => name.toLowerCase())).size).toBe(CORS_ALLOWED_HEADERS.length);
  });
});
