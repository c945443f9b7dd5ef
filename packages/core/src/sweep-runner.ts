// Runs the sweeper (sweep.ts): one pass at a time per store, on demand
// (`store.sweep()`), and on a timer only when the host asks for one
// (`sweepIntervalSeconds`): a server does; a Worker (cron trigger) or a test
// calls `sweep()` itself.
import type { EngineContext } from './engine-context.js';
import type { MigrationGate } from './migration-gate.js';
import { sweep } from './sweep.js';
import type { SweepReport } from './types.js';

export interface SweepRunner {
  /** One pass; a call during a running pass shares that pass. */
  sweepOnce(): Promise<SweepReport>;
  /** Stops the timer (if any) and waits for a running pass to end. */
  stop(): Promise<void>;
}

export function createSweepRunner(engine: EngineContext, gate: MigrationGate, intervalSeconds: number): SweepRunner {
  let sweeping: Promise<SweepReport> | undefined;
  const sweepOnce = () =>
    (sweeping ??= gate(() => sweep(engine)).finally(() => {
      sweeping = undefined;
    }));
  const timer =
    intervalSeconds > 0
      ? setInterval(() => {
          sweepOnce().catch((error: unknown) => console.error('attache: sweep failed', error));
        }, intervalSeconds * 1000)
      : undefined;
  // Never keep a process alive just for the sweeper (Node's timers have unref; others need not).
  (timer as { unref?: () => void } | undefined)?.unref?.();
  return {
    sweepOnce,
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      await sweeping?.catch(() => {});
    },
  };
}
