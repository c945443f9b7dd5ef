import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAttachmentStore, memoryMetadata } from '@attache/core';
import { fsBlobs } from './dist/index.js';
const MiB = 1048576, CHUNK = 65536, total = 256 * MiB;
const sandbox = await mkdtemp(join(tmpdir(), 'encmem-'));
const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: fsBlobs({ root: join(sandbox, 'b') }),
  ...(process.env.PLAIN ? {} : { encryption: { keys: { k1: new Uint8Array(32).fill(11) }, activeKeyId: 'k1' } }) });
let peak = 0; const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
const base = process.memoryUsage().rss;
let produced = 0;
const source = new ReadableStream({ pull(c) { if (produced >= total) return c.close(); c.enqueue(new Uint8Array(CHUNK).fill((produced / CHUNK) & 255)); produced += CHUNK; if (produced % (4 * MiB) === 0) sample(); } }, { highWaterMark: 0 });
const lease = await store.acquire({ key: 'big', ttlSeconds: 300, owner: 'o' });
let t = performance.now();
await lease.attach({ name: 'big.bin', body: source });
await lease.release();
const up = performance.now() - t; const upPeak = peak - base; peak = 0;
const base2 = process.memoryUsage().rss;
t = performance.now();
const opened = await store.openAttachment({ key: 'big', name: 'big.bin' });
let pos = 0, next = 4 * MiB;
for await (const chunk of opened.body) { pos += chunk.byteLength; if (pos >= next) { sample(); next += 4 * MiB; } }
const down = performance.now() - t;
console.log(`${process.version} ${process.env.PLAIN ? 'plain' : 'enc'} up ${(256000 / up).toFixed(0)} MiB/s peak +${(upPeak / MiB).toFixed(0)} MiB; down ${(256000 / down).toFixed(0)} MiB/s peak +${((peak - base) / MiB).toFixed(0)} (vs pre-down +${((peak - base2) / MiB).toFixed(0)})`);
await store.close(); await rm(sandbox, { recursive: true, force: true });
