// Security properties of the HTTP surface, tested by behaviour:
// hostile names, keys and namespaces are refused before anything is stored
// (and never escape the blob root); downloads cannot be rendered as active
// content; bearer tokens and the authorize hook guard every route; and the
// Node server's request limits that exist today hold.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createAttachmentStore,
  createHandler,
  memoryBlobs,
  memoryMetadata,
  type AttachmentStore,
  type AuthorizeContext,
  type BlobStore,
  type Lease,
} from '@attache/core';
import { resolveServeConfig, serve, type RunningServer } from '@attache/cli';
import { fsBlobs } from '@attache/fs';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { contractViolations, observe } from './http-contract.js';

const BASE = 'http://security.test/v1';
const encoder = new TextEncoder();

let blobs: BlobStore;
let store: AttachmentStore;
let lease: Lease;
let handle: (request: Request) => Promise<Response>;

beforeEach(async () => {
  blobs = memoryBlobs();
  store = createAttachmentStore({ metadata: memoryMetadata(), blobs, sweepIntervalSeconds: 0 });
  handle = createHandler({ store });
  lease = await store.acquire({ key: 'sec/key', owner: 'security', ttlSeconds: 60 });
});
afterEach(async () => {
  await store.close();
});

function leaseHeaders(held: Lease = lease): Record<string, string> {
  return { 'X-Lease-ID': held.leaseId, 'X-Txn-ID': held.txnId, 'X-Fencing-Token': String(held.fencingToken) };
}

function query(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

async function errorCode(response: Response): Promise<{ status: number; code: string }> {
  const observed = await observe(response);
  // Every refusal must itself honour the error contract.
  expect(contractViolations(observed, { downloadBody: false })).toEqual([]);
  return { status: observed.status, code: (JSON.parse(new TextDecoder().decode(observed.body)) as { error: string }).error };
}

async function blobPaths(): Promise<string[]> {
  const paths: string[] = [];
  for await (const blob of blobs.list('')) paths.push(blob.path);
  return paths;
}

function multipart(boundary: string, disposition: string, data: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: text/plain\r\n\r\n${data}\r\n--${boundary}--\r\n`);
}

// API.md §2 "Names": 1–255 characters, not . or .., no /, \, NUL or other control characters.
const HOSTILE_NAMES: ReadonlyArray<[string, string]> = [
  ['a slash', 'a/b.txt'],
  ['a traversal', '../../etc/passwd'],
  ['a backslash', '..\\..\\boot.ini'],
  ['"."', '.'],
  ['".."', '..'],
  ['NUL', 'nul\u0000.txt'],
  ['a newline', 'line\nbreak.txt'],
  ['a carriage return', 'cr\r.txt'],
  ['a tab', 'tab\t.txt'],
  ['an escape', 'esc\u001b[31m.txt'],
  ['DEL', 'del\u007f.txt'],
  ['a C1 control (NEL)', 'nel\u0085.txt'],
  ['256 characters', 'n'.repeat(256)],
  ['256 astral characters', '😀'.repeat(256)],
];

const HOSTILE_KEYS: readonly string[] = ['../x', 'a/../b', 'a/./b', '/abs', 'a//b', 'a/', 'a\\b', 'UPPER', 'nul\u0000', 'sp ace', 'k'.repeat(129), 'a/.staging/b', 'é'];
const HOSTILE_NAMESPACES: readonly string[] = ['.', '..', 'a/b', '../x', 'UPPER', 'sp ace', 'n'.repeat(129), 'nul\u0000', '.%2e', 'a\\b'];

describe('hostile names, keys and namespaces', () => {
  for (const [what, name] of HOSTILE_NAMES) {
    it(`refuses a name with ${what} with 400 invalid_name on upload, download and delete, storing nothing`, async () => {
      const upload = await handle(
        new Request(`${BASE}/attachments?${query({ key: 'sec/key', name })}`, { method: 'POST', headers: leaseHeaders(), body: 'payload' }),
      );
      expect(await errorCode(upload)).toEqual({ status: 400, code: 'invalid_name' });
      const download = await handle(new Request(`${BASE}/attachment?${query({ key: 'sec/key', name })}`));
      expect(await errorCode(download)).toEqual({ status: 400, code: 'invalid_name' });
      const remove = await handle(new Request(`${BASE}/attachment?${query({ key: 'sec/key', name })}`, { method: 'DELETE', headers: leaseHeaders() }));
      expect(await errorCode(remove)).toEqual({ status: 400, code: 'invalid_name' });
      expect(await lease.list()).toEqual([]);
      expect(await blobPaths()).toEqual([]);
    });
  }

  it('accepts a name of exactly 255 characters and unicode names (the limit is not off by one)', async () => {
    for (const name of ['n'.repeat(255), '😀'.repeat(255), 'résumé 文件 ✓.pdf']) {
      const response = await handle(
        new Request(`${BASE}/attachments?${query({ key: 'sec/key', name })}`, { method: 'POST', headers: leaseHeaders(), body: 'ok' }),
      );
      expect(response.status).toBe(200);
      expect(((await response.json()) as { attachment: { name: string } }).attachment.name).toBe(name);
    }
  });

  it('refuses hostile multipart filenames (plain and RFC 5987 filename*) with invalid_name, keeping no part', async () => {
    const dispositions = [
      'form-data; name="file"; filename="../../evil.sh"',
      'form-data; name="file"; filename="..\\\\evil.bat"',
      `form-data; name="file"; filename*=UTF-8''..%2F..%2Fevil`,
      `form-data; name="file"; filename*=UTF-8''nul%00.txt`,
      `form-data; name="file"; filename*=UTF-8''..`,
    ];
    for (const disposition of dispositions) {
      const response = await handle(
        new Request(`${BASE}/attachments?${query({ key: 'sec/key' })}`, {
          method: 'POST',
          headers: { ...leaseHeaders(), 'Content-Type': 'multipart/form-data; boundary=sec' },
          body: multipart('sec', disposition, 'evil'),
        }),
      );
      expect(await errorCode(response), disposition).toEqual({ status: 400, code: 'invalid_name' });
    }
    expect(await lease.list()).toEqual([]);
    expect(await blobPaths()).toEqual([]);
  });

  it('refuses traversal and foreign characters in keys with 400 invalid_key, on every keyed route', async () => {
    for (const key of HOSTILE_KEYS) {
      const acquire = await handle(
        new Request(`${BASE}/acquire`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ key, ttl_seconds: 5, owner: 'x' }),
        }),
      );
      expect(await errorCode(acquire), `acquire ${JSON.stringify(key)}`).toEqual({ status: 400, code: 'invalid_key' });
      const list = await handle(new Request(`${BASE}/attachments?${query({ key })}`));
      expect(await errorCode(list), `list ${JSON.stringify(key)}`).toEqual({ status: 400, code: 'invalid_key' });
      const upload = await handle(
        new Request(`${BASE}/attachments?${query({ key, name: 'a.txt' })}`, { method: 'POST', headers: leaseHeaders(), body: 'x' }),
      );
      expect(await errorCode(upload), `upload ${JSON.stringify(key)}`).toEqual({ status: 400, code: 'invalid_key' });
    }
    expect(await blobPaths()).toEqual([]);
  });

  it('refuses hostile namespaces with 400 invalid_namespace', async () => {
    for (const namespace of HOSTILE_NAMESPACES) {
      const list = await handle(new Request(`${BASE}/attachments?${query({ namespace, key: 'sec/key' })}`));
      expect(await errorCode(list), JSON.stringify(namespace)).toEqual({ status: 400, code: 'invalid_namespace' });
      const acquire = await handle(
        new Request(`${BASE}/acquire`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ namespace, key: 'k', ttl_seconds: 5, owner: 'x' }),
        }),
      );
      expect(await errorCode(acquire), JSON.stringify(namespace)).toEqual({ status: 400, code: 'invalid_namespace' });
    }
  });

  // API.md's namespace pattern [a-z0-9._-]{1,128} admits "." and "..": they
  // pass name validation, and only the blob-path check stops them (reported:
  // checkNamespace should refuse them with invalid_namespace, as keys do).
  for (const namespace of ['.', '..']) {
    it(`never stores anything under the dot namespace ${JSON.stringify(namespace)}`, async () => {
      const held = await store.acquire({ namespace, key: 'k', owner: 'x', ttlSeconds: 60 }).catch(() => undefined);
      if (held !== undefined) {
        const upload = await handle(
          new Request(`${BASE}/attachments?${query({ namespace, key: 'k', name: 'a.txt' })}`, { method: 'POST', headers: leaseHeaders(held), body: 'x' }),
        );
        const refused = await errorCode(upload);
        expect(refused.status).toBe(400);
        expect(await held.list()).toEqual([]);
      }
      expect(await blobPaths()).toEqual([]);
    });
  }

  it('refuses a malformed txn_id (it becomes a blob path segment) with 400 invalid_body', async () => {
    for (const txnId of ['../../x', 'a/b', '.', '..', 'x'.repeat(65), 'nul\u0000']) {
      const response = await handle(
        new Request(`${BASE}/acquire`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ key: 'fresh', ttl_seconds: 5, owner: 'x', txn_id: txnId }),
        }),
      );
      expect(await errorCode(response), JSON.stringify(txnId)).toEqual({ status: 400, code: 'invalid_body' });
    }
  });
});

describe('hostile input on the file system', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('never creates a file outside the blob root, whatever the names and keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'attache-sec-'));
    dirs.push(dir);
    const root = join(dir, 'root', 'blobs');
    const fsStore = createAttachmentStore({
      metadata: sqliteMetadata({ filename: join(dir, 'root', 'attache.db') }),
      blobs: fsBlobs({ root }),
      sweepIntervalSeconds: 0,
    });
    try {
      const fsHandle = createHandler({ store: fsStore });
      const held = await fsStore.acquire({ key: 'sec', owner: 'x', ttlSeconds: 60 });
      const attempts: Array<Record<string, string>> = [
        ...HOSTILE_NAMES.map(([, name]) => ({ key: 'sec', name })),
        ...HOSTILE_KEYS.map((key) => ({ key, name: 'a.txt' })),
        ...HOSTILE_NAMESPACES.map((namespace) => ({ namespace, key: 'sec', name: 'a.txt' })),
      ];
      // Dot namespaces are refused as names already, before any lease or blob path exists.
      for (const namespace of ['.', '..']) {
        await expect(fsStore.acquire({ namespace, key: 'sec', owner: 'x', ttlSeconds: 60 })).rejects.toMatchObject({
          code: 'invalid_namespace',
        });
      }
      for (const params of attempts) {
        const response = await fsHandle(
          new Request(`${BASE}/attachments?${query(params)}`, { method: 'POST', headers: leaseHeaders(held), body: 'escape' }),
        );
        expect(response.status, JSON.stringify(params)).toBe(400);
        await response.body?.cancel();
      }
      // The data directory holds only what the store made: `root/` (db + blobs); nothing beside it.
      expect(await readdir(dir)).toEqual(['root']);
      const tree = await readdir(root, { recursive: true }).catch(() => [] as string[]);
      expect(tree.filter((entry) => entry.includes('..') || entry.includes('etc') || entry.includes('evil'))).toEqual([]);
      await held.release({ rollback: true });
    } finally {
      await fsStore.close();
    }
  });
});

describe('download headers', () => {
  const DISPOSITION = /^(attachment|inline); filename="([\x20-\x7e]*)"; filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]+)$/;

  async function uploadCommitted(name: string, contentType: string, body = 'hello, world'): Promise<string> {
    const writer = await store.acquire({ key: 'dl/key', owner: 'writer', ttlSeconds: 60 });
    const { attachment } = await writer.attach({ name, contentType, body: encoder.encode(body) });
    await writer.release();
    return attachment.id;
  }

  function expectSafeHeaders(response: Response, name: string, disposition: 'attachment' | 'inline'): void {
    expect(response.headers.get('X-Content-Type-Options')).toBe('nosniff');
    const match = DISPOSITION.exec(response.headers.get('Content-Disposition') ?? '');
    expect(match, response.headers.get('Content-Disposition') ?? 'no Content-Disposition').not.toBeNull();
    expect(match![1]).toBe(disposition);
    // filename* carries the exact name; the quoted fallback is plain printable ASCII with no quote, backslash or percent.
    expect(decodeURIComponent(match![3]!)).toBe(name);
    expect(match![2]).not.toMatch(/["\\%]/);
  }

  const CASES: ReadonlyArray<[string, 'attachment' | 'inline']> = [
    ['text/html', 'attachment'],
    ['text/html; charset=utf-8', 'attachment'],
    ['image/svg+xml', 'attachment'],
    ['application/xhtml+xml', 'attachment'],
    ['text/javascript', 'attachment'],
    ['application/xml', 'attachment'],
    ['application/octet-stream', 'attachment'],
    ['text/plain', 'inline'],
    ['text/plain; charset=utf-8', 'inline'],
    ['image/png', 'inline'],
    ['IMAGE/PNG', 'inline'],
    ['application/pdf', 'inline'],
  ];

  for (const [contentType, disposition] of CASES) {
    it(`serves ${contentType} as ${disposition}, with nosniff, on GET, HEAD, a range and by id`, async () => {
      const name = 'report "final" 100% résumé;.bin';
      const id = await uploadCommitted(name, contentType);
      const requests = [
        new Request(`${BASE}/attachment?${query({ key: 'dl/key', name })}`),
        new Request(`${BASE}/attachment?${query({ key: 'dl/key', name })}`, { method: 'HEAD' }),
        new Request(`${BASE}/attachment?${query({ key: 'dl/key', name })}`, { headers: { Range: 'bytes=0-3' } }),
        new Request(`${BASE}/attachment?${query({ id })}`),
      ];
      for (const request of requests) {
        const response = await handle(request);
        expect([200, 206]).toContain(response.status);
        expectSafeHeaders(response, name, disposition);
        // A rendered file must not run scripts in the server's origin.
        if (disposition === 'inline') expect(response.headers.get('Content-Security-Policy')).toBe('sandbox');
        await response.body?.cancel();
      }
    });
  }

  it('keeps nosniff on 304 and on error answers of the download route', async () => {
    await uploadCommitted('page.html', 'text/html');
    const first = await handle(new Request(`${BASE}/attachment?${query({ key: 'dl/key', name: 'page.html' })}`));
    const etag = first.headers.get('ETag')!;
    await first.body?.cancel();
    const revalidated = await handle(new Request(`${BASE}/attachment?${query({ key: 'dl/key', name: 'page.html' })}`, { headers: { 'If-None-Match': etag } }));
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('X-Content-Type-Options')).toBe('nosniff');
    const outside = await handle(new Request(`${BASE}/attachment?${query({ key: 'dl/key', name: 'page.html' })}`, { headers: { Range: 'bytes=999-' } }));
    expect(outside.status).toBe(416);
    expect(outside.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(await errorCode(outside)).toEqual({ status: 416, code: 'range_not_satisfiable' });
  });

  it('sends a staged (lease read) download privately and never inline for active content', async () => {
    await lease.attach({ name: 'staged.svg', contentType: 'image/svg+xml', body: encoder.encode('<svg onload="alert(1)"/>') });
    const response = await handle(new Request(`${BASE}/attachment?${query({ key: 'sec/key', name: 'staged.svg' })}`, { headers: leaseHeaders() }));
    expect(response.status).toBe(200);
    expectSafeHeaders(response, 'staged.svg', 'attachment');
    expect(response.headers.get('Cache-Control')).toContain('private');
    await response.body?.cancel();
  });

  it('never lets a stored content type inject a header (CR/LF or non-ASCII types are refused on upload)', async () => {
    for (const contentType of ['text/plain\r\nSet-Cookie: a=b', 'text/html\u00e9', 'text/plain; x="\u2028"']) {
      const response = await handle(
        new Request(`${BASE}/attachments?${query({ key: 'sec/key', name: 'ct.txt', content_type: contentType })}`, {
          method: 'POST',
          headers: leaseHeaders(),
          body: 'x',
        }),
      );
      expect(await errorCode(response), JSON.stringify(contentType)).toEqual({ status: 400, code: 'invalid_content_type' });
    }
  });
});

describe('bearer token', () => {
  const TOKEN = 's3cret-token_value';
  let guarded: (request: Request) => Promise<Response>;
  beforeEach(() => {
    guarded = createHandler({ store, token: TOKEN });
  });

  const REJECTED: ReadonlyArray<[string, Record<string, string>]> = [
    ['no Authorization header', {}],
    ['a wrong token', { Authorization: 'Bearer wrong-token' }],
    ['a token one character short', { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['a token with a suffix', { Authorization: `Bearer ${TOKEN}x` }],
    ['a token with a space inside', { Authorization: `Bearer ${TOKEN.slice(0, 4)} ${TOKEN.slice(4)}` }],
    ['a second word after the token', { Authorization: `Bearer ${TOKEN} extra` }],
    ['the Basic scheme', { Authorization: `Basic ${btoa(`user:${TOKEN}`)}` }],
    ['the token without a scheme', { Authorization: TOKEN }],
    ['the scheme glued to the token', { Authorization: `Bearer${TOKEN}` }],
    ['the scheme alone', { Authorization: 'Bearer' }],
    ['an empty token', { Authorization: 'Bearer ' }],
    ['the token in another header', { 'X-Token': TOKEN }],
  ];

  for (const [what, headers] of REJECTED) {
    it(`answers 401 unauthorized with WWW-Authenticate for ${what}`, async () => {
      for (const path of ['/attachments?key=k', '/openapi.json', '/no-such-route', '/acquire']) {
        const response = await guarded(new Request(`${BASE}${path}`, { headers }));
        expect(response.headers.get('WWW-Authenticate')).toMatch(/^Bearer\b/);
        expect(await errorCode(response), path).toEqual({ status: 401, code: 'unauthorized' });
      }
    });
  }

  it('accepts the token with the scheme in any case and 1*SP before the token (RFC 6750 §2.1, RFC 9110 §11.1)', async () => {
    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer   ${TOKEN}`, ` Bearer ${TOKEN} `]) {
      const response = await guarded(new Request(`${BASE}/attachments?key=k`, { headers: { Authorization: authorization } }));
      expect(response.status, JSON.stringify(authorization)).toBe(200);
      await response.body?.cancel();
    }
  });

  it('leaves only healthz open, and authenticates before revealing which routes exist', async () => {
    const health = await guarded(new Request(`${BASE}/healthz`));
    expect(health.status).toBe(200);
    const unknown = await guarded(new Request(`${BASE}/definitely-not-a-route`));
    expect(unknown.status).toBe(401);
    await unknown.body?.cancel();
    const wrongMethod = await guarded(new Request(`${BASE}/healthz`, { method: 'DELETE' }));
    expect([401, 405]).toContain(wrongMethod.status);
    await wrongMethod.body?.cancel();
  });

  it('refuses before reading an upload body', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(encoder.encode('x'));
        if (pulled > 3) controller.close();
      },
    }, { highWaterMark: 0 });
    const response = await guarded(
      new Request(`${BASE}/attachments?${query({ key: 'sec/key', name: 'a' })}`, {
        method: 'POST',
        headers: leaseHeaders(),
        body,
        duplex: 'half',
      } as RequestInit),
    );
    expect(response.status).toBe(401);
    expect(pulled).toBe(0);
    await response.body?.cancel();
  });
});

describe('authorize hook', () => {
  interface Call {
    action: string;
    namespace: string | undefined;
    key: string | undefined;
  }
  let calls: Call[];
  let verdict: (context: AuthorizeContext) => boolean | Response;
  let hooked: (request: Request) => Promise<Response>;

  beforeEach(() => {
    calls = [];
    verdict = () => true;
    hooked = createHandler({
      store,
      authorize: (context) => {
        calls.push({ action: context.action, namespace: context.namespace, key: context.key });
        return verdict(context);
      },
    });
  });

  function jsonPost(path: string, body: unknown, headers: Record<string, string> = {}): Request {
    return new Request(`${BASE}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  }

  it('receives the action, namespace and key of every keyed route', async () => {
    const ns = 'tenant-1';
    const acquired = await hooked(jsonPost('/acquire', { namespace: ns, key: 'doc/1', ttl_seconds: 30, owner: 'o' }));
    expect(acquired.status).toBe(200);
    const held = (await acquired.json()) as { lease_id: string; txn_id: string; fencing_token: number };
    const headers = { 'X-Lease-ID': held.lease_id, 'X-Txn-ID': held.txn_id, 'X-Fencing-Token': String(held.fencing_token) };
    const scoped = `namespace=${ns}&key=doc/1`;
    const requests: Request[] = [
      jsonPost('/keepalive', { namespace: ns, key: 'doc/1', lease_id: held.lease_id, txn_id: held.txn_id, ttl_seconds: 30 }, { 'X-Fencing-Token': String(held.fencing_token) }),
      new Request(`${BASE}/attachments?${scoped}&name=a.txt`, { method: 'POST', headers, body: 'a' }),
      new Request(`${BASE}/attachments?${scoped}`, { headers }),
      new Request(`${BASE}/attachment?${scoped}&name=a.txt`, { headers }),
      new Request(`${BASE}/attachment?${scoped}&name=a.txt`, { method: 'HEAD', headers }),
      new Request(`${BASE}/attachment?${scoped}&name=a.txt`, { method: 'DELETE', headers }),
      new Request(`${BASE}/attachments?${scoped}`, { method: 'DELETE', headers }),
      jsonPost('/release', { namespace: ns, key: 'doc/1', lease_id: held.lease_id, txn_id: held.txn_id }, { 'X-Fencing-Token': String(held.fencing_token) }),
    ];
    for (const request of requests) {
      const response = await hooked(request);
      expect(response.status, `${request.method} ${request.url}`).toBe(200);
      await response.body?.cancel();
    }
    expect(calls).toEqual([
      { action: 'acquire', namespace: ns, key: 'doc/1' },
      { action: 'keepalive', namespace: ns, key: 'doc/1' },
      { action: 'upload', namespace: ns, key: 'doc/1' },
      { action: 'list', namespace: ns, key: 'doc/1' },
      { action: 'download', namespace: ns, key: 'doc/1' },
      { action: 'download', namespace: ns, key: 'doc/1' },
      { action: 'delete', namespace: ns, key: 'doc/1' },
      { action: 'delete', namespace: ns, key: 'doc/1' },
      { action: 'release', namespace: ns, key: 'doc/1' },
    ]);
  });

  it('is asked without a key for document uploads, and with the attachment’s own key for reads by id alone', async () => {
    const created = await hooked(new Request(`${BASE}/attachments?name=doc.txt`, { method: 'POST', body: 'doc' }));
    expect(created.status).toBe(200);
    const { attachment } = (await created.json()) as { attachment: { id: string } };
    const read = await hooked(new Request(`${BASE}/attachment?id=${attachment.id}`));
    expect(read.status).toBe(200);
    await read.body?.cancel();
    const stored = await store.getAttachment({ id: attachment.id });
    expect(calls).toEqual([
      { action: 'upload', namespace: undefined, key: undefined },
      { action: 'download', namespace: stored.namespace, key: stored.key },
    ]);
  });

  it('turns a refusal into 401 with WWW-Authenticate before touching the store or the body', async () => {
    verdict = () => false;
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.close();
      },
    }, { highWaterMark: 0 });
    const response = await hooked(
      new Request(`${BASE}/attachments?${query({ key: 'sec/key', name: 'a' })}`, { method: 'POST', headers: leaseHeaders(), body, duplex: 'half' } as RequestInit),
    );
    expect(response.headers.get('WWW-Authenticate')).toBe('Bearer');
    expect(await errorCode(response)).toEqual({ status: 401, code: 'unauthorized' });
    expect(pulled).toBe(0);
    expect(await lease.list()).toEqual([]);
  });

  it('sends a Response verdict as is (e.g. 403 from the host application)', async () => {
    verdict = (context) => (context.key === 'forbidden' ? new Response('nope', { status: 403 }) : true);
    const denied = await hooked(new Request(`${BASE}/attachments?key=forbidden`));
    expect(denied.status).toBe(403);
    expect(await denied.text()).toBe('nope');
    const allowed = await hooked(new Request(`${BASE}/attachments?key=allowed`));
    expect(allowed.status).toBe(200);
    await allowed.body?.cancel();
  });
});

// ── The Node server (`attache serve`): limits that exist today ─────────────

describe('request limits of the Node server', () => {
  let server: RunningServer;
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'attache-limits-'));
    server = await serve(resolveServeConfig({ port: '0', host: '127.0.0.1', 'data-dir': dataDir }, { env: {} }));
  });
  afterEach(async () => {
    await server.close({ timeoutMs: 0 });
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Sends raw bytes on a fresh connection; resolves with everything the server sent until it closed (or `waitMs` passed). */
  function rawExchange(payload: string, waitMs = 5_000, port = server.port): Promise<{ text: string; closed: boolean }> {
    return new Promise((resolve, reject) => {
      const socket: Socket = connect(port, '127.0.0.1');
      let text = '';
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ text, closed: false });
      }, waitMs);
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('error', (error) => {
        // A reset after the answer was sent still counts as closed.
        if (text !== '') return;
        clearTimeout(timer);
        reject(error);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ text, closed: true });
      });
      socket.write(payload);
    });
  }

  it('answers 431 to request headers over 16 KiB (Node maxHeaderSize)', async () => {
    const { text } = await rawExchange(`GET /v1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('answers 431 to a query string over 16 KiB (the request line counts against the same limit)', async () => {
    const { text } = await rawExchange(`GET /v1/attachments?key=k&pad=${'q'.repeat(20 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 (?:431|414) /);
  });

  it('serves headers just under the limit (the limit is not lower than documented)', async () => {
    const { text } = await rawExchange(`GET /v1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Big: ${'a'.repeat(12 * 1024)}\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('honours ATTACHE_MAX_HEADER_BYTES for headers and query strings', async () => {
    const smallDir = await mkdtemp(join(tmpdir(), 'attache-limits-small-'));
    const small = await serve(
      resolveServeConfig({ port: '0', host: '127.0.0.1', 'data-dir': smallDir }, { env: { ATTACHE_MAX_HEADER_BYTES: '4096' } }),
    );
    try {
      const query = await rawExchange(`GET /v1/attachments?key=k&pad=${'q'.repeat(6 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 5_000, small.port);
      expect(query.text).toMatch(/^HTTP\/1\.1 (?:431|414) /);
      const fits = await rawExchange(`GET /v1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Pad: ${'a'.repeat(2 * 1024)}\r\n\r\n`, 5_000, small.port);
      expect(fits.text).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      await small.close({ timeoutMs: 0 });
      await rm(smallDir, { recursive: true, force: true });
    }
  });

  it('answers 400 to a malformed request line without reaching the handler', async () => {
    const { text } = await rawExchange('NOT A REQUEST\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('keeps an idle keep-alive connection as long as the idle timeout, announces it, and then closes it', { timeout: 20_000 }, async () => {
    const idleDir = await mkdtemp(join(tmpdir(), 'attache-keepalive-'));
    const idle = await serve(resolveServeConfig({ port: '0', host: '127.0.0.1', 'data-dir': idleDir }, { env: { ATTACHE_IDLE_TIMEOUT_SECONDS: '2' } }));
    try {
      const started = Date.now();
      const { text, closed } = await rawExchange('GET /v1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 12_000, idle.port);
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      // Clients close first when told (undici: timeout - 1 s), so they never reuse a socket the server is closing.
      expect(text).toMatch(/\r\nKeep-Alive: timeout=2\r\n/i);
      expect(closed).toBe(true);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(1_500);
      expect(elapsed).toBeLessThan(8_000);
    } finally {
      await idle.close();
      await rm(idleDir, { recursive: true, force: true });
    }
  });

  it('cuts off a stalled upload after the idle timeout and keeps nothing of it', { timeout: 20_000 }, async () => {
    const idleDir = await mkdtemp(join(tmpdir(), 'attache-idle-'));
    const idle = await serve(resolveServeConfig({ port: '0', host: '127.0.0.1', 'data-dir': idleDir }, { env: { ATTACHE_IDLE_TIMEOUT_SECONDS: '1' } }));
    try {
      const acquired = await fetch(`${idle.url}/v1/acquire`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ key: 'stall', ttl_seconds: 60, owner: 'slow-client' }),
      });
      const held = (await acquired.json()) as { lease_id: string; txn_id: string; fencing_token: number };
      const leaseLines = `X-Lease-ID: ${held.lease_id}\r\nX-Txn-ID: ${held.txn_id}\r\nX-Fencing-Token: ${held.fencing_token}\r\n`;
      const started = Date.now();
      // Promises 100 bytes, sends 10, then goes silent.
      const { closed } = await rawExchange(
        `POST /v1/attachments?key=stall&name=partial.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n${leaseLines}\r\n0123456789`,
        10_000,
        idle.port,
      );
      expect(closed).toBe(true);
      expect(Date.now() - started).toBeLessThan(8_000);
      const staged = await fetch(`${idle.url}/v1/attachments?key=stall`, {
        headers: { 'X-Lease-ID': held.lease_id, 'X-Txn-ID': held.txn_id, 'X-Fencing-Token': String(held.fencing_token) },
      });
      expect(((await staged.json()) as { attachments: unknown[] }).attachments).toEqual([]);
    } finally {
      await idle.close({ timeoutMs: 0 });
      await rm(idleDir, { recursive: true, force: true });
    }
  });

  it('caps JSON lease bodies at 64 KiB with 400 invalid_body', async () => {
    const response = await fetch(`${server.url}/v1/acquire`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'k', ttl_seconds: 5, owner: 'o'.repeat(70 * 1024) }),
    });
    expect(await errorCode(response)).toEqual({ status: 400, code: 'invalid_body' });
  });
});
