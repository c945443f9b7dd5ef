// The systems under test. Each one starts as a child process on 127.0.0.1
// and says how it takes an upload and serves a download, so every workload
// drives them through the same client:
//   bare     the ceiling: pipe to a file + fsync, createReadStream back
//   attache  `attache serve` (core's Node listener), SQLite + fs, and on
//            PostgreSQL + fs when a PostgreSQL server is available, and on
//            PostgreSQL + S3 when a radosgw (Ceph) cluster is too; and
//            encrypted at rest (ATTACHE_MASTER_KEY) on SQLite + fs
//   express / hono / nestjs   the example apps (each mounts attache at /v1)
//   multer   Express + multer disk storage (no fsync)
//   tus      @tus/server + @tus/file-store (no fsync)
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attacheS3Environment } from '@attache/testing';
import { bytesOf, generatedBody } from './http-client.mjs';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const repo = (path) => here(`../../../${path}`);

/** Starts `args` under node and waits for its "listening on <url>" line (bounded). */
async function startProcess(name, args, env) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  child.stderr.on('data', (chunk) => {
    log = (log + chunk).slice(-4000);
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s:\n${log}`)), 30_000);
    const onOutput = (chunk) => {
      out += chunk;
      const match = /listening on (\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        // What it prints from now on (the Hono example logs every request)
        // is drained and dropped, not kept: the pipe must not fill, or the
        // server's next synchronous write to it would stall its event loop.
        child.stdout.off('data', onOutput);
        child.stdout.resume();
        out = '';
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onOutput);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening:\n${log}`));
    });
  });
  return {
    url,
    pid: child.pid,
    /** What a failed run prints about this server: whether it is still running, and its last stderr. */
    describe: () => `${child.exitCode === null && child.signalCode === null ? 'running' : `exited (${child.exitCode ?? child.signalCode})`}${log ? `; stderr ends:\n${log.slice(-1500)}` : ''}`,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const leaseHeaders = (lease) => ({
  'x-lease-id': lease.lease_id,
  'x-txn-id': lease.txn_id,
  'x-fencing-token': String(lease.fencing_token),
});
const json = (body) => ({ headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });

/** The attache HTTP API (any mount): document uploads, lease cycles, downloads by id or name. */
function attacheSystem({ name, label, start }) {
  let sequence = 0;
  const api = {
    name,
    label,
    kind: 'attache',
    start,
    async upload(client, body) {
      const answer = await client.ok({ method: 'POST', path: `/v1/attachments?name=f${++sequence}.bin`, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length }, body });
      return JSON.parse(answer.text).attachment.id;
    },
    async download(client, id) {
      return (await client.ok({ path: `/v1/attachment?id=${id}`, discard: true })).length;
    },
    /** acquire → upload → release on `key`; returns the upload's and the release's durations (ms) and the attachment id. */
    async leaseCycle(client, key, body) {
      const lease = JSON.parse((await client.ok({ method: 'POST', path: '/v1/acquire', ...json({ key, ttl_seconds: 600, owner: 'bench' }) })).text);
      const headers = leaseHeaders(lease);
      const size = Buffer.isBuffer(body) ? body.length : body.size;
      const stream = Buffer.isBuffer(body) ? body : generatedBody(size);
      const uploadStarted = performance.now();
      const uploaded = await client.ok({ method: 'POST', path: `/v1/attachments?key=${encodeURIComponent(key)}&name=a.bin`, headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': size }, body: stream });
      const started = performance.now();
      const release = json({ key, lease_id: lease.lease_id, txn_id: lease.txn_id });
      await client.ok({ method: 'POST', path: '/v1/release', headers: { ...release.headers, ...headers }, body: release.body });
      return { uploadMs: started - uploadStarted, releaseMs: performance.now() - started, id: JSON.parse(uploaded.text).attachment.id };
    },
    async uploadLarge(client, size) {
      // A keyed overwrite each time, so the previous version's blob is collected and the disk does not fill.
      // Timed like bare's: the upload request alone (the acquire and the release are not part of it).
      const { uploadMs, releaseMs, id } = await api.leaseCycle(client, 'bench/large', { size });
      return { uploadMs, commitMs: releaseMs, id };
    },
    async cleanLarge() {},
  };
  return api;
}

/** Data directories, one per system, under the run's work directory. */
export function defineSystems({ work, postgresUrl, s3 }) {
  const dataDir = (name) => join(work, name);
  const cli = repo('packages/cli/dist/bin.js');
  const example = (app) => repo(`apps/${app}-example/dist/main.js`);
  const systems = [];

  const bareDir = dataDir('bare');
  systems.push({
    name: 'bare',
    label: 'bare Node (pipe + fsync)',
    kind: 'ceiling',
    start: () => startProcess('bare', [here('./servers/bare.mjs')], { BENCH_DATA_DIR: bareDir }),
    async upload(client, body) {
      return JSON.parse((await client.ok({ method: 'POST', path: '/upload', headers: { 'content-length': body.length }, body })).text).id;
    },
    async download(client, id) {
      return (await client.ok({ path: `/files/${id}`, discard: true })).length;
    },
    async uploadLarge(client, size) {
      const started = performance.now();
      const answer = await client.ok({ method: 'POST', path: '/upload', headers: { 'content-length': size }, body: generatedBody(size) });
      return { uploadMs: performance.now() - started, id: JSON.parse(answer.text).id };
    },
    cleanLarge: (id) => rmSync(join(bareDir, id), { force: true }),
  });

  systems.push(attacheSystem({
    name: 'attache',
    label: 'attache serve (SQLite + fs)',
    start: () => startProcess('attache', [cli, 'serve', '--port', '0', '--data-dir', dataDir('attache')], {}),
  }));
  systems.push(attacheSystem({
    name: 'attache-encrypted',
    label: 'attache serve (SQLite + fs), encrypted at rest',
    start: () => startProcess('attache-encrypted', [cli, 'serve', '--port', '0', '--data-dir', dataDir('attache-encrypted')], {
      // A fixed bench key (32 bytes, base64): AES-256-GCM in 64 KiB segments.
      ATTACHE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    }),
  }));
  if (postgresUrl) {
    systems.push(attacheSystem({
      name: 'attache-pg',
      label: 'attache serve (PostgreSQL + fs)',
      start: () => startProcess('attache-pg', [cli, 'serve', '--port', '0', '--data-dir', dataDir('attache-pg')], { ATTACHE_DATABASE_URL: postgresUrl }),
    }));
  }
  if (s3) {
    systems.push(attacheSystem({
      name: 'attache-s3',
      label: 'attache serve (PostgreSQL + S3 on radosgw)',
      start: () => startProcess('attache-s3', [cli, 'serve', '--port', '0', '--data-dir', dataDir('attache-s3')], {
        ATTACHE_DATABASE_URL: s3.databaseUrl,
        ...attacheS3Environment(s3),
      }),
    }));
  }
  for (const app of ['express', 'hono', 'nestjs']) {
    systems.push(attacheSystem({
      name: app,
      label: `${app === 'nestjs' ? 'NestJS' : app[0].toUpperCase() + app.slice(1)} example (SQLite + fs)`,
      start: () => startProcess(app, [example(app)], { PORT: '0', ATTACHE_DATA_DIR: dataDir(app) }),
    }));
  }

  const multerDir = dataDir('multer');
  const boundary = 'attache-bench-boundary';
  const multipart = (size) => {
    const prefix = Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="f.bin"\r\ncontent-type: application/octet-stream\r\n\r\n`);
    const suffix = Buffer.from(`\r\n--${boundary}--\r\n`);
    return { prefix, suffix, length: prefix.length + size + suffix.length, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
  };
  systems.push({
    name: 'multer',
    label: 'Express + multer disk storage (no fsync)',
    kind: 'peer',
    start: () => startProcess('multer', [here('./servers/multer.mjs')], { BENCH_DATA_DIR: multerDir }),
    async upload(client, body) {
      const form = multipart(body.length);
      const whole = Buffer.concat([form.prefix, body, form.suffix]);
      return JSON.parse((await client.ok({ method: 'POST', path: '/upload', headers: { ...form.headers, 'content-length': whole.length }, body: whole })).text).id;
    },
    async uploadLarge(client, size) {
      const form = multipart(size);
      const started = performance.now();
      const answer = await client.ok({ method: 'POST', path: '/upload', headers: { ...form.headers, 'content-length': form.length }, body: generatedBody(size, form) });
      return { uploadMs: performance.now() - started, id: JSON.parse(answer.text).id };
    },
    cleanLarge: (id) => rmSync(join(multerDir, id), { force: true }),
  });

  const tusDir = dataDir('tus');
  const tusCreate = (client, size, body) =>
    client.ok({
      method: 'POST',
      path: '/files',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': size, 'content-type': 'application/offset+octet-stream', 'content-length': size },
      body,
    });
  const tusId = (answer) => answer.headers.location.split('/').pop();
  systems.push({
    name: 'tus',
    label: '@tus/server + file store (no fsync)',
    kind: 'peer',
    start: () => startProcess('tus', [here('./servers/tus.mjs')], { BENCH_DATA_DIR: tusDir }),
    async upload(client, body) {
      const answer = await tusCreate(client, body.length, body);
      if (Number(answer.headers['upload-offset']) !== body.length) throw new Error(`tus stored ${answer.headers['upload-offset']} of ${body.length} bytes`);
      return tusId(answer);
    },
    async download(client, id) {
      return (await client.ok({ path: `/files/${id}`, discard: true })).length;
    },
    async uploadLarge(client, size) {
      const started = performance.now();
      const answer = await tusCreate(client, size, generatedBody(size));
      return { uploadMs: performance.now() - started, id: tusId(answer) };
    },
    cleanLarge: (id) => {
      rmSync(join(tusDir, id), { force: true });
      rmSync(join(tusDir, `${id}.json`), { force: true });
    },
  });
  return systems;
}

export { bytesOf };
