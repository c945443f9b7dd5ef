// The radosgw harness itself: a cluster of our own per test (not the run's
// shared one), so stopping and failing can be observed.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { findCephBinaries, startRadosgw, type RunningRadosgw } from '../src/radosgw.js';

const installed = 'bin' in findCephBinaries();
const missingReason = installed ? '' : 'Ceph is not installed (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common)';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Processes whose command line names `directory` (the cluster's daemons and commands all do, through -c). */
const processesOf = (directory: string) =>
  readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${directory}/`);
      } catch {
        return false; // gone meanwhile
      }
    });

const clientFor = (cluster: RunningRadosgw) =>
  new S3Client({
    endpoint: cluster.endpoint,
    region: cluster.region,
    credentials: cluster.credentials,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });

describe.skipIf(!installed && !process.env.CI)('startRadosgw', () => {
  it.runIf(!installed)('has Ceph installed (CI must install it)', () => {
    throw new Error(missingReason);
  });
  if (!installed) return;

  it('serves the bucket with the given keys on 127.0.0.1, and stop() ends every daemon and deletes the directory', { timeout: 90_000 }, async () => {
    const cluster = await startRadosgw({ bucket: 'harness-check', memoryBytes: 256 * 1024 * 1024 });
    try {
      expect(cluster.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(cluster.pids).toHaveLength(3);
      expect(cluster.pids.every(alive)).toBe(true);
      const client = clientFor(cluster);
      await client.send(new PutObjectCommand({ Bucket: cluster.bucket, Key: 'a/b', Body: 'hello radosgw' }));
      const object = await client.send(new GetObjectCommand({ Bucket: cluster.bucket, Key: 'a/b' }));
      expect(await object.Body!.transformToString()).toBe('hello radosgw');
      await client.send(new DeleteObjectCommand({ Bucket: cluster.bucket, Key: 'a/b' }));

      const stranger = new S3Client({
        endpoint: cluster.endpoint,
        region: cluster.region,
        credentials: { accessKeyId: cluster.credentials.accessKeyId, secretAccessKey: 'wrong' },
        forcePathStyle: true,
        maxAttempts: 1,
      });
      await expect(stranger.send(new GetObjectCommand({ Bucket: cluster.bucket, Key: 'a/b' }))).rejects.toMatchObject({
        name: 'SignatureDoesNotMatch',
      });
      client.destroy();
      stranger.destroy();
    } finally {
      await cluster.stop();
    }
    expect(cluster.pids.filter(alive)).toEqual([]);
    expect(processesOf(cluster.directory)).toEqual([]);
    expect(existsSync(cluster.directory)).toBe(false);
  });

  it("fails fast with radosgw's log tail when its port is taken, and leaves nothing behind", { timeout: 90_000 }, async () => {
    // Accepts and closes at once, so a readiness probe gets no HTTP answer.
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const { port } = squatter.address() as { port: number };
    try {
      const started = performance.now();
      // Step time-outs longer than the test's bound below: the failure must come from radosgw itself, not from waiting one out.
      const stepTimeoutMs = 60_000;
      const failure = await startRadosgw({ port, memoryBytes: 256 * 1024 * 1024, stepTimeoutMs }).then(
        async (cluster) => {
          await cluster.stop();
          return undefined;
        },
        (error: unknown) => error as Error,
      );
      // Exited, or (when it hangs on its way out, as under CI's load) failed with its console's fatal line.
      expect(failure?.message).toMatch(/radosgw (exited|failed) .*\n[^]*last lines of .*client\.rgw\.log/);
      expect(performance.now() - started).toBeLessThan(stepTimeoutMs);
      const directory = /\/attache-rgw-[^/\s]+/.exec(failure!.message)?.[0];
      expect(directory).toBeDefined();
      expect(existsSync(join(tmpdir(), directory!))).toBe(false);
      // Nothing it started is left running (radosgw-admin was still waiting for the cluster).
      expect(processesOf(join(tmpdir(), directory!))).toEqual([]);
    } finally {
      squatter.close();
    }
  });

  it('is stopped and deleted by its watchdog when the owner process dies without calling stop()', { timeout: 90_000 }, async () => {
    const owner = spawn('sleep', ['600'], { stdio: 'ignore' });
    let cluster: RunningRadosgw | undefined;
    try {
      cluster = await startRadosgw({ ownerPid: owner.pid!, memoryBytes: 256 * 1024 * 1024 });
      expect(cluster.pids.every(alive)).toBe(true);
      owner.kill('SIGKILL');
      await once(owner, 'exit');
      const { pids, directory } = cluster;
      await expect.poll(() => pids.filter(alive), { timeout: 10_000, interval: 200 }).toEqual([]);
      await expect.poll(() => existsSync(directory), { timeout: 10_000, interval: 200 }).toBe(false);
    } finally {
      owner.kill('SIGKILL');
      await cluster?.stop();
    }
  });
});
