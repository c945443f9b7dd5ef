// "Prove, don't assume": randomized requests straight into createHandler.
// Each fast-check run starts an empty store, interleaves valid lease flows
// with arbitrary requests, and ends by proving the store equals the model
// (see fuzz-runner.ts). Every answer must be < 500, every error must match
// API.md §3, and no body may leak a stack trace or a path.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryBlobs, memoryMetadata } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { step } from './fuzz-arbitraries.js';
import { createWorld, runStep, verifyWorld, type WorldPorts } from './fuzz-runner.js';
import { StatusTally } from './http-contract.js';

/** Fixed unless overridden, so a failure reproduces; set ATTACHE_FUZZ_SEED to explore. */
const SEED = Number(process.env.ATTACHE_FUZZ_SEED ?? 20_240_606);
const START_MS = Date.UTC(2030, 0, 1);

interface Campaign {
  runs: number;
  minSteps: number;
  maxSteps: number;
  ports: () => Promise<WorldPorts & { dispose: () => Promise<void> }>;
}

async function fuzz(campaign: Campaign, tally: StatusTally): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: campaign.minSteps, maxLength: campaign.maxSteps }), async (steps) => {
      const ports = await campaign.ports();
      const world = createWorld(ports, START_MS);
      try {
        for (const generated of steps) await runStep(world, tally, generated);
        await verifyWorld(world, tally);
      } finally {
        await world.store.close();
        await ports.dispose();
      }
      const problems = [...world.violations, ...world.model.violations];
      if (problems.length > 0) throw new Error(`${problems.length} violations:\n${problems.slice(0, 15).join('\n')}`);
    }),
    { seed: SEED, numRuns: campaign.runs, endOnFailure: false, interruptAfterTimeLimit: 100_000 },
  );
}

const temporaryDirs: string[] = [];
afterAll(async () => {
  for (const dir of temporaryDirs) await rm(dir, { recursive: true, force: true });
});

describe('the HTTP handler under randomized requests', () => {
  it('answers 10,000+ requests on the memory ports with no 5xx, documented errors only, and state equal to the model', { timeout: 120_000 }, async () => {
    const tally = new StatusTally();
    const started = performance.now();
    await fuzz(
      {
        runs: 100,
        minSteps: 100,
        maxSteps: 140,
        ports: async () => ({ metadata: memoryMetadata(), blobs: memoryBlobs(), dispose: async () => {} }),
      },
      tally,
    );
    console.log(`${tally.summary('fuzz (memory ports)')}\n  in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(tally.total).toBeGreaterThanOrEqual(10_000);
    expect(tally.count((status) => status >= 500)).toBe(0);
    // The campaign must reach the deep paths, not only input validation.
    expect(tally.byStatus.get(200) ?? 0).toBeGreaterThan(2_000);
    for (const code of ['waiting', 'lease_required', 'fencing_mismatch', 'txn_mismatch', 'attachment_too_large', 'checksum_mismatch', 'invalid_body', 'invalid_name', 'invalid_key']) {
      expect(tally.byCode.get(code) ?? 0, `no request ever answered ${code}`).toBeGreaterThan(0);
    }
    expect(tally.byStatus.get(206) ?? 0).toBeGreaterThan(0);
    expect(tally.byStatus.get(416) ?? 0).toBeGreaterThan(0);
  });

  it('answers randomized requests on SQLite + local files with the same guarantees', { timeout: 120_000 }, async () => {
    const tally = new StatusTally();
    const started = performance.now();
    await fuzz(
      {
        runs: 20,
        minSteps: 100,
        maxSteps: 140,
        ports: async () => {
          const dir = await mkdtemp(join(tmpdir(), 'attache-fuzz-'));
          temporaryDirs.push(dir);
          return {
            metadata: sqliteMetadata({ filename: join(dir, 'attache.db') }),
            blobs: fsBlobs({ root: join(dir, 'blobs') }),
            dispose: () => rm(dir, { recursive: true, force: true }),
          };
        },
      },
      tally,
    );
    console.log(`${tally.summary('fuzz (SQLite + fs)')}\n  in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(tally.total).toBeGreaterThanOrEqual(2_000);
    expect(tally.count((status) => status >= 500)).toBe(0);
    expect(tally.byStatus.get(200) ?? 0).toBeGreaterThan(200);
  });
});
