// Benchmark: attache over HTTP against the raw file system, measured in the
// same run so the ratios hold on any machine. Also: the server's memory while
// a large upload and download stream through it, and the cost of a commit for
// a tiny and a large attachment (it must not depend on size).
//
//   pnpm bench                      (64 MiB by default)
//   BENCH_MIB=256 pnpm bench
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_MIB ?? 64) * MiB;
const CHUNK = 64 * 1024;
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'attache-bench-'));

/** A pull stream of `size` bytes (a repeating pattern), never held whole. */
function generated(size) {
  const chunk = new Uint8Array(CHUNK).map((_, i) => i % 251);
  let left = size;
  return new ReadableStream({
    pull(controller) {
      if (left <= 0) return controller.close();
      const n = Math.min(CHUNK, left);
      left -= n;
      controller.enqueue(n === CHUNK ? chunk.slice() : chunk.slice(0, n));
    },
  }, { highWaterMark: 0 });
}

async function timed(fn) {
  const started = performance.now();
  const result = await fn();
  return { ms: performance.now() - started, result };
}

async function baselineWrite(path) {
  await pipeline(Readable.fromWeb(generated(SIZE)), createWriteStream(path));
  const handle = await open(path, 'r+');
  await handle.sync();
  await handle.close();
}

async function baselineRead(path) {
  let total = 0;
  await pipeline(createReadStream(path), new Writable({ write(chunk, _e, cb) { total += chunk.length; cb(); } }));
  return total;
}

function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
}

/** Samples the child's RSS while `fn` runs; returns the peak growth over the value before. */
async function peakRssGrowth(pid, fn) {
  const before = rssOf(pid);
  let peak = before;
  const timer = setInterval(() => { peak = Math.max(peak, rssOf(pid)); }, 20);
  try {
    const result = await fn();
    peak = Math.max(peak, rssOf(pid));
    return { growth: peak - before, result };
  } finally {
    clearInterval(timer);
  }
}

async function startServer() {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data-dir', join(work, 'data')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, api: `${url}/v1` };
}

async function main() {
  const { child, api } = await startServer();
  try {
    const json = async (path, body, headers = {}) => {
      const response = await fetch(`${api}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
      return response.json();
    };
    const upload = async (key, name, size) => {
      const lease = await json('/acquire', { key, ttl_seconds: 600, owner: 'bench' });
      const headers = { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id, 'X-Fencing-Token': String(lease.fencing_token) };
      const up = await timed(async () => {
        const response = await fetch(`${api}/attachments?key=${key}&name=${name}`, { method: 'POST', headers, body: generated(size), duplex: 'half' });
        if (!response.ok) throw new Error(`upload: ${response.status} ${await response.text()}`);
        return response.json();
      });
      const commit = await timed(() => json('/release', { key, lease_id: lease.lease_id, txn_id: lease.txn_id }, headers));
      return { uploadMs: up.ms, commitMs: commit.ms };
    };
    const download = async (key, name) => {
      const response = await fetch(`${api}/attachment?key=${key}&name=${name}&public=true`);
      let total = 0;
      for await (const chunk of response.body) total += chunk.length;
      return total;
    };

    // Warm-up (JIT, SQLite pages, connection).
    await upload('warm/up', 'w.bin', MiB);
    await download('warm/up', 'w.bin');

    const baseFile = join(work, 'baseline.bin');
    const baseW = await timed(() => baselineWrite(baseFile));
    const baseR = await timed(() => baselineRead(baseFile));

    const big = await peakRssGrowth(child.pid, () => upload('bench/big', 'big.bin', SIZE));
    const down = await peakRssGrowth(child.pid, () => timed(() => download('bench/big', 'big.bin')));
    if (down.result.result !== SIZE) throw new Error(`downloaded ${down.result.result} of ${SIZE} bytes`);

    const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const bigCommits = [big.result.commitMs];
    for (let i = 0; i < 2; i++) bigCommits.push((await upload(`bench/big${i}`, 'big.bin', SIZE)).commitMs);
    const bigCommit = median(bigCommits);
    const tinyCommits = [];
    for (let i = 0; i < 5; i++) tinyCommits.push((await upload(`bench/tiny${i}`, 't.bin', 1024)).commitMs);
    const tinyCommit = median(tinyCommits);

    const mib = SIZE / MiB;
    const rows = [
      ['baseline fs write + fsync', `${baseW.ms.toFixed(0)} ms`, `${(mib / (baseW.ms / 1000)).toFixed(0)} MiB/s`, '1.00'],
      ['attache upload (HTTP, hash, fsync)', `${big.result.uploadMs.toFixed(0)} ms`, `${(mib / (big.result.uploadMs / 1000)).toFixed(0)} MiB/s`, (big.result.uploadMs / baseW.ms).toFixed(2)],
      ['baseline fs read', `${baseR.ms.toFixed(0)} ms`, `${(mib / (baseR.ms / 1000)).toFixed(0)} MiB/s`, '1.00'],
      ['attache download (HTTP)', `${down.result.ms.toFixed(0)} ms`, `${(mib / (down.result.ms / 1000)).toFixed(0)} MiB/s`, (down.result.ms / baseR.ms).toFixed(2)],
    ];
    console.log(`\nattache bench — ${mib} MiB, SQLite + fs, one server process on 127.0.0.1\n`);
    console.log('| step | time | throughput | ratio to baseline |\n|---|---|---|---|');
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
    console.log(`\ncommit (release) of a ${mib} MiB attachment (median of 3): ${bigCommit.toFixed(1)} ms; of a 1 KiB one (median of 5): ${tinyCommit.toFixed(1)} ms; ratio ${(bigCommit / tinyCommit).toFixed(2)}`);
    console.log(`server RSS growth: upload ${(big.growth / MiB).toFixed(1)} MiB, download ${(down.growth / MiB).toFixed(1)} MiB (for ${mib} MiB streamed)`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
