// What the Express router owns: mounting (base path from the mount), living
// behind common middleware, and leaving the rest of the app alone. The HTTP
// behaviour itself is proven by the contract suite (contract.test.ts).
import { createAttachmentStore, memoryBlobs, memoryMetadata, type AttachmentStore } from '@attache/core';
import cors from 'cors';
import express, { type ErrorRequestHandler } from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attache } from '../src/index.js';
import { listenApp, type RunningApp } from './listen.js';

let store: AttachmentStore;
let running: RunningApp | undefined;
beforeEach(() => {
  store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs(), sweepIntervalSeconds: 0 });
});
afterEach(async () => {
  await running?.close();
  running = undefined;
  await store.close();
});

interface LeaseJson {
  lease_id: string;
  txn_id: string;
  fencing_token: number;
}

async function acquire(base: string, key: string): Promise<LeaseJson> {
  const response = await fetch(`${base}/acquire`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ key, owner: 'test', ttl_seconds: 60 }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as LeaseJson;
}

const leaseHeaders = (lease: LeaseJson) => ({
  'X-Lease-ID': lease.lease_id,
  'X-Txn-ID': lease.txn_id,
  'X-Fencing-Token': String(lease.fencing_token),
});

/** An app with the usual middleware in front of attache. */
function typicalApp() {
  const app = express();
  app.use(cors());
  app.use(express.json());
  app.use(express.urlencoded({ extended: false }));
  const files = attache({ store });
  app.use('/v1', files, files.errors);
  return app;
}

describe('attache() Express router', () => {
  it('serves the whole lease round trip behind cors(), express.json() and express.urlencoded()', async () => {
    running = await listenApp(typicalApp());
    const base = `${running.url}/v1`;
    const lease = await acquire(base, 'docs/1');
    const upload = await fetch(`${base}/attachments?key=docs/1&name=a.bin`, {
      method: 'POST',
      headers: { ...leaseHeaders(lease), 'Content-Type': 'application/octet-stream' },
      body: new Uint8Array([1, 2, 3]),
    });
    expect(upload.status).toBe(200);
    expect(upload.headers.get('Access-Control-Allow-Origin')).toBe('*');
    const release = await fetch(`${base}/release`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Fencing-Token': String(lease.fencing_token) },
      body: JSON.stringify({ key: 'docs/1', lease_id: lease.lease_id, txn_id: lease.txn_id }),
    });
    expect(await release.json()).toEqual({ released: true });
    const download = await fetch(`${base}/attachment?key=docs/1&name=a.bin`);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('refuses with 400 invalid_body, storing nothing, an upload whose bytes a body parser already consumed', async () => {
    running = await listenApp(typicalApp());
    const base = `${running.url}/v1`;
    const lease = await acquire(base, 'docs/2');
    for (const [name, contentType, body] of [
      ['form.txt', 'application/x-www-form-urlencoded', 'a=1&b=2'],
      // Re-serializing parsed JSON would store different bytes (spacing, key order): refused too.
      ['data.json', 'application/json', '{ "spaced" : true }'],
    ] as const) {
      const response = await fetch(`${base}/attachments?key=docs/2&name=${name}`, {
        method: 'POST',
        headers: { ...leaseHeaders(lease), 'Content-Type': contentType },
        body,
      });
      expect(response.status, contentType).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'invalid_body' });
    }
    expect(await store.lease({ key: 'docs/2', ...leaseCredentials(lease) }).list()).toEqual([]);
  });

  it('takes JSON uploads byte for byte when mounted before express.json()', async () => {
    const app = express();
    app.use('/v1', attache({ store }));
    app.use(express.json());
    running = await listenApp(app);
    const base = `${running.url}/v1`;
    const lease = await acquire(base, 'docs/3');
    const body = '{ "spaced" : true }';
    const response = await fetch(`${base}/attachments?key=docs/3&name=data.json`, {
      method: 'POST',
      headers: { ...leaseHeaders(lease), 'Content-Type': 'application/json' },
      body,
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ attachment: { size: body.length, content_type: 'application/json' } });
  });

  it('answers unknown paths under the mount with attache’s 404 JSON and leaves other paths to the app', async () => {
    const app = typicalApp();
    app.get('/elsewhere', (_req, res) => {
      res.send('app route');
    });
    running = await listenApp(app);
    const unknown = await fetch(`${running.url}/v1/nope`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: 'not_found' });
    expect(await (await fetch(`${running.url}/elsewhere`)).text()).toBe('app route');
    const outside = await fetch(`${running.url}/v2/healthz`);
    expect(outside.status).toBe(404);
    expect(outside.headers.get('Content-Type')).toMatch(/^text\/html/); // Express's own 404, not attache's
  });

  it('works under a nested, parametrised mount path, and documents it in OpenAPI', async () => {
    const app = express();
    app.use(express.json());
    const files = attache({ store });
    app.use('/tenants/:tenant/files', files, files.errors);
    running = await listenApp(app);
    for (const tenant of ['acme', 'globex']) {
      const base = `${running.url}/tenants/${tenant}/files`;
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true });
      await acquire(base, `${tenant}/doc`);
      const document = (await (await fetch(`${base}/openapi.json`)).json()) as { servers?: { url: string }[] };
      expect(JSON.stringify(document.servers)).toContain(`/tenants/${tenant}/files`);
    }
  });

  it('passes errors that are not a body parser’s on to the app’s error handler', async () => {
    const app = express();
    app.use((_req, _res, next) => next(new Error('upstream failure')));
    const files = attache({ store });
    app.use('/v1', files, files.errors);
    const handler: ErrorRequestHandler = (error: Error, _req, res, _next) => {
      res.status(502).send(`app handled: ${error.message}`);
    };
    app.use(handler);
    running = await listenApp(app);
    const response = await fetch(`${running.url}/v1/healthz`);
    expect(response.status).toBe(502);
    expect(await response.text()).toBe('app handled: upstream failure');
  });
});

function leaseCredentials(lease: LeaseJson) {
  return { leaseId: lease.lease_id, txnId: lease.txn_id, fencingToken: lease.fencing_token };
}
