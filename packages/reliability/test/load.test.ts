// Load: 200 concurrent clients with mixed work against the BUILT `attache`
// bin in a child process (SQLite + local files), for ATTACHE_LOAD_SECONDS
// (default 5; set 30 for the long run). Proves: no answer but the
// documented 409 waiting / 413 attachment_too_large besides success, no file
// descriptor leaked once clients disconnect, bounded RSS, and each client's
// committed state is what it committed. Prints throughput, per-route
// latency percentiles, statuses, fd and RSS figures. Loopback only.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractViolations } from './http-contract.js';

const BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
const CLIENTS = 200;
const LOAD_SECONDS = Number(process.env.ATTACHE_LOAD_SECONDS ?? 5);
const HOT_KEYS = ['hot/0', 'hot/1', 'hot/2', 'hot/3', 'hot/4'];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

class LoadClient {
  readonly agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  constructor(private readonly port: number) {}

  send(method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const outgoing = httpRequest(
        { host: '127.0.0.1', port: this.port, method, path, agent: this.agent, headers: body ? { ...headers, 'Content-Length': String(body.byteLength) } : headers },
        (incoming) => {
          const chunks: Buffer[] = [];
          incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
          incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body: Buffer.concat(chunks) }));
          incoming.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }
}

/** Latency samples per route, statuses, and anything off-contract. */
class Figures {
  readonly latencies = new Map<string, number[]>();
  readonly statuses = new Map<number, number>();
  readonly unexpected: string[] = [];
  requests = 0;

  record(route: string, started: number, answer: Answer): void {
    this.requests += 1;
    let samples = this.latencies.get(route);
    if (samples === undefined) this.latencies.set(route, (samples = []));
    samples.push(performance.now() - started);
    this.statuses.set(answer.status, (this.statuses.get(answer.status) ?? 0) + 1);
  }

  report(seconds: number): string {
    const lines = [`load: ${CLIENTS} clients, ${seconds.toFixed(1)} s, ${this.requests} requests, ${(this.requests / seconds).toFixed(0)} requests/s`];
    for (const [route, samples] of [...this.latencies].sort()) {
      const sorted = [...samples].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
      lines.push(`  ${route.padEnd(9)} n=${String(sorted.length).padStart(6)}  p50 ${at(0.5).padStart(7)} ms  p99 ${at(0.99).padStart(7)} ms  max ${at(1).padStart(7)} ms`);
    }
    lines.push(`  statuses: ${[...this.statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status}: ${count}`).join(', ')}`);
    return lines.join('\n');
  }
}

async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1] ?? Number.NaN);
}

function startServer(dataDir: string): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (name !== 'PORT' && !name.startsWith('ATTACHE_')) env[name] = value;
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`attache did not start: ${stderr}`)), 15_000);
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), stderr: () => stderr });
      }
    });
    child.on('exit', (code) => reject(new Error(`attache exited with ${code}: ${stderr}`)));
  });
}

const json = { 'Content-Type': 'application/json' };

function leaseHeaders(lease: { lease_id: string; txn_id: string; fencing_token: number }): Record<string, string> {
  return { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id, 'X-Fencing-Token': String(lease.fencing_token) };
}

/** One simulated client: mostly its own key (a full flow), sometimes a contended hot key, sometimes an oversized upload. */
async function runClient(id: number, client: LoadClient, figures: Figures, deadline: number, committed: Map<string, Map<string, string>>): Promise<void> {
  const ownKey = `load/c${id}`;
  const mine = new Map<string, string>();
  committed.set(ownKey, mine);
  let iteration = 0;
  const call = async (route: string, method: string, path: string, headers: Record<string, string>, body?: Uint8Array, allowed: number[] = [200]): Promise<Answer> => {
    const started = performance.now();
    const answer = await client.send(method, path, headers, body);
    figures.record(route, started, answer);
    const violations = contractViolations(
      { status: answer.status, headers: new Headers(Object.entries(answer.headers).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)] as [string, string]]))), body: answer.body },
      { downloadBody: route === 'download' },
    );
    if (!allowed.includes(answer.status) || violations.length > 0) {
      figures.unexpected.push(`${method} ${path} → ${answer.status} ${answer.body.toString('utf8', 0, 200)} ${violations.join('; ')}`);
    }
    return answer;
  };

  while (Date.now() < deadline) {
    iteration += 1;
    // The mix depends on the client too, so even one iteration per client covers every kind of work.
    const contended = (id + iteration) % 5 === 0;
    const key = contended ? HOT_KEYS[(id + iteration) % HOT_KEYS.length]! : ownKey;
    const acquired = await call('acquire', 'POST', '/v1/acquire', json, Buffer.from(JSON.stringify({ key, ttl_seconds: 30, owner: `client-${id}` })), [200, 409]);
    if (acquired.status === 409) {
      // Documented: waiting + Retry-After. A polite client backs off briefly.
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    const lease = JSON.parse(acquired.body.toString()) as { lease_id: string; txn_id: string; fencing_token: number };
    const headers = leaseHeaders(lease);
    const staged = new Map<string, string>();
    const uploads = 1 + (iteration % 3);
    for (let index = 0; index < uploads; index++) {
      const name = `file-${(iteration + index) % 4}.bin`;
      const data = Buffer.alloc(512 + ((id * 977 + iteration * 131 + index * 61) % 32_768), (id + iteration + index) % 251);
      const tooLarge = (id * 7 + iteration) % 11 === 0 && index === 0;
      const maxBytes = tooLarge ? `&max_bytes=${data.byteLength - 1}` : '';
      const answer = await call('upload', 'POST', `/v1/attachments?key=${key}&name=${name}${maxBytes}`, { ...headers, 'Content-Type': 'application/octet-stream' }, data, tooLarge ? [413] : [200]);
      if (answer.status === 200) staged.set(name, createHash('sha256').update(data).digest('hex'));
    }
    await call('list', 'GET', `/v1/attachments?key=${key}`, headers);
    const [someName] = [...staged.keys()];
    if (someName !== undefined) await call('download', 'GET', `/v1/attachment?key=${key}&name=${someName}`, { ...headers, ...(iteration % 2 ? { Range: 'bytes=0-99' } : {}) }, undefined, [200, 206]);
    const rollback = (id + iteration * 3) % 4 === 0;
    await call('release', 'POST', '/v1/release', { ...json, 'X-Fencing-Token': String(lease.fencing_token) }, Buffer.from(JSON.stringify({ key, lease_id: lease.lease_id, txn_id: lease.txn_id, rollback })));
    if (!rollback && key === ownKey) for (const [name, sha] of staged) mine.set(name, sha);
    if (key === ownKey && mine.size > 0) {
      const [name] = [...mine.keys()];
      await call('download', 'GET', `/v1/attachment?key=${key}&name=${name}&public=true`, {}, undefined);
    }
  }
}

describe('load against attache serve (SQLite + files, child process)', () => {
  let dataDir: string;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;

  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: pnpm turbo run build --filter=@attache/cli...`);
    dataDir = await mkdtemp(join(tmpdir(), 'attache-load-'));
    server = await startServer(dataDir);
  });
  afterAll(async () => {
    server?.child.kill('SIGTERM');
    await new Promise((resolve) => (server?.child.exitCode !== null ? resolve(undefined) : server.child.once('exit', resolve)));
    await rm(dataDir, { recursive: true, force: true });
  });

  it(`serves ${CLIENTS} concurrent mixed clients with only documented errors, no fd leak and bounded RSS`, { timeout: (LOAD_SECONDS + 60) * 1000 }, async () => {
    const { child, port } = server!;
    const pid = child.pid!;
    const client = new LoadClient(port);
    // Warm up (schema, WAL files, first blob directories) so "before" counts steady-state descriptors.
    const warm = await client.send('GET', '/v1/healthz', {});
    expect(warm.status).toBe(200);
    client.agent.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const fdBefore = await openFds(pid);
    const rssStart = await rssKiB(pid);

    const figures = new Figures();
    const committed = new Map<string, Map<string, string>>();
    let rssPeak = rssStart;
    let fdPeak = fdBefore;
    const sampler = setInterval(() => {
      void Promise.all([rssKiB(pid), openFds(pid)]).then(([rss, fds]) => {
        rssPeak = Math.max(rssPeak, rss);
        fdPeak = Math.max(fdPeak, fds);
      }, () => undefined);
    }, 200);

    const loadClient = new LoadClient(port);
    const started = performance.now();
    const deadline = Date.now() + LOAD_SECONDS * 1000;
    const outcomes = await Promise.allSettled(Array.from({ length: CLIENTS }, (_, id) => runClient(id, loadClient, figures, deadline, committed)));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const failures = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected').map((outcome) => String(outcome.reason));

    // Every client's committed state is exactly what it committed.
    const checker = new LoadClient(port);
    const mismatches: string[] = [];
    for (const [key, names] of committed) {
      const answer = await checker.send('GET', `/v1/attachments?key=${key}&public=true`, {});
      const listed = (JSON.parse(answer.body.toString()) as { attachments: Array<{ name: string; sha256: string }> }).attachments;
      const got = listed.map((attachment) => `${attachment.name}:${attachment.sha256}`).sort().join(',');
      const want = [...names].map(([name, sha]) => `${name}:${sha}`).sort().join(',');
      if (got !== want) mismatches.push(`${key}: ${got} ≠ ${want}`);
    }

    // Disconnect every client, let the server settle, then count again.
    loadClient.agent.destroy();
    checker.agent.destroy();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const fdAfter = await openFds(pid);
    const rssEnd = await rssKiB(pid);

    console.log(
      `${figures.report(seconds)}\n` +
        `  unexpected answers: ${figures.unexpected.length}, client failures: ${failures.length}\n` +
        `  fds: before ${fdBefore}, peak ${fdPeak}, after ${fdAfter}\n` +
        `  RSS: start ${(rssStart / 1024).toFixed(1)} MiB, peak ${(rssPeak / 1024).toFixed(1)} MiB, end ${(rssEnd / 1024).toFixed(1)} MiB`,
    );
    expect(failures.slice(0, 5)).toEqual([]);
    expect(figures.unexpected.slice(0, 10)).toEqual([]);
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(figures.requests).toBeGreaterThan(CLIENTS * 5);
    expect(figures.statuses.get(409) ?? 0).toBeGreaterThan(0); // the hot keys really were contended
    expect(figures.statuses.get(413) ?? 0).toBeGreaterThan(0);
    // No descriptor outlives its request: only a small allowance for SQLite's lazily opened files.
    expect(fdAfter).toBeLessThanOrEqual(fdBefore + 4);
    // Memory per upload is bounded: 200 clients of ≤ 33 KiB bodies must not grow the heap without limit.
    expect(rssPeak).toBeLessThan(rssStart + 400 * 1024);
    expect(rssEnd).toBeLessThan(rssStart + 250 * 1024);
  });
});
