// Vitest global setup: one throwaway Ceph cluster serving S3 (radosgw) for
// the whole run, when Ceph is installed; test files share its bucket, each
// under its own key prefix. Without Ceph, radosgw tests skip locally and fail
// under CI (see `describeRadosgw`). `ATTACHE_TEST_RADOSGW=off` leaves the
// cluster out of a local run that does not need it (it costs 3–10 s to start).
import type { TestProject } from 'vitest/node';
import { findCephBinaries, startRadosgw, type RunningRadosgw } from './radosgw.js';

let running: RunningRadosgw | undefined;

export async function setup(project: TestProject): Promise<void> {
  if (process.env.ATTACHE_TEST_RADOSGW === 'off') {
    project.provide('radosgw', null);
    project.provide('radosgwMissingReason', 'ATTACHE_TEST_RADOSGW=off');
    return;
  }
  const found = findCephBinaries();
  if (!('bin' in found)) {
    project.provide('radosgw', null);
    project.provide(
      'radosgwMissingReason',
      `Ceph is not installed (missing ${found.missing.join(', ')}; apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common)`,
    );
    return;
  }
  // The AWS SDK (which creates the bucket) would print its Node < 22 notice
  // here, in vitest's own process, where vitest.config.ts's `env` does not apply.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  running = await startRadosgw();
  const { endpoint, region, bucket, credentials } = running;
  project.provide('radosgw', { endpoint, region, bucket, credentials });
  project.provide('radosgwMissingReason', '');
}

export async function teardown(): Promise<void> {
  await running?.stop();
  running = undefined;
}
