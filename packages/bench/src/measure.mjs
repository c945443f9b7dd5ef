// Measuring primitives: a bounded closed-loop load generator, percentiles,
// medians with their range, and a server's resident memory from /proc.
import { readFileSync } from 'node:fs';

export const MiB = 1024 * 1024;

/**
 * `concurrency` workers each run `op(worker, n)` back to back until
 * `durationMs` has passed (or `maxOps` ran, whichever comes first).
 */
export async function closedLoop({ concurrency, durationMs, maxOps = 200_000, op }) {
  const latencies = [];
  const deadline = performance.now() + durationMs;
  const worker = async (index) => {
    for (let n = 0; performance.now() < deadline && latencies.length < maxOps; n++) {
      const started = performance.now();
      await op(index, n);
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, index) => worker(index)));
  const seconds = (performance.now() - started) / 1000;
  return { opsPerSecond: latencies.length / seconds, ...percentiles(latencies) };
}

export function percentiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  return { p50: at(0.5), p99: at(0.99), count: sorted.length };
}

/** Median with min and max of repeated measurements (this machine is shared and noisy). */
export function spread(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor((sorted.length - 1) / 2)], min: sorted[0], max: sorted.at(-1), n: sorted.length };
}

export function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
}

/** Runs `fn` while sampling `pid`'s RSS; resolves with fn's result and the peak growth over the value before. */
export async function withPeakRss(pid, fn) {
  const before = rssOf(pid);
  let peak = before;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid));
    } catch {
      // the process may be gone; the caller sees its error
    }
  }, 20);
  try {
    const result = await fn();
    peak = Math.max(peak, rssOf(pid));
    return { result, rssGrowth: peak - before };
  } finally {
    clearInterval(timer);
  }
}

/** Busy and total jiffies of all CPUs from /proc/stat (idle and iowait count as not busy). */
function cpuTimes() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  return { busy: total - fields[3] - fields[4], total };
}

/**
 * Waits until the host's CPUs are quiet — under `threshold` of their time busy
 * over a `windowMs` window — or `maxMs` passed; resolves with the time waited,
 * the last window's busy share, and whether it was quiet.
 * A transfer measured right after another inherits its after-effects: a
 * download started right after its 256 MiB upload's fsync ran at a quarter
 * of its settled speed (docs/benchmarks.md, ninth slice). Some of what this
 * VM does after a large write is not guest CPU, so a quiet window is a
 * floor, not a guarantee.
 */
export async function settle({ threshold = 0.15, windowMs = 250, maxMs = 10_000 } = {}) {
  const started = performance.now();
  for (;;) {
    const before = cpuTimes();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = cpuTimes();
    const busy = (after.busy - before.busy) / Math.max(1, after.total - before.total);
    const waited = performance.now() - started;
    if (busy < threshold || waited >= maxMs) return { waitedMs: waited, busy, quiet: busy < threshold };
  }
}
