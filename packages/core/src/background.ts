// Work that follows a durable commit but that no caller waits for: blob
// promotion and garbage deletion (commit.ts steps 4–7). A release or an
// upload answers as soon as its metadata transaction is durable; this queue
// then runs the follow-up, a few tasks at a time. A task that fails, or a
// process that dies before running it, leaves state the sweeper finishes
// (`listUnpromoted`, the garbage queue, the orphan scan), so errors are
// logged, never thrown to anyone.

/** Enough to overlap a few fsyncs without a burst of commits flooding the disk queue. */
export const BACKGROUND_CONCURRENCY = 4;

export interface BackgroundWork {
  /** Queues `task`; it starts once fewer than the limit are running. */
  run(task: () => Promise<void>): void;
  /** Resolves once every task queued so far, and any task those queued, has finished. */
  settled(): Promise<void>;
}

export function backgroundWork(
  concurrency = BACKGROUND_CONCURRENCY,
  onError: (error: unknown) => void = (error) =>
    console.error('attache: background promotion or blob deletion failed; the sweeper will retry', error),
): BackgroundWork {
  const queue: Array<() => Promise<void>> = [];
  let running = 0;
  let idleWaiters: Array<() => void> = [];

  function pump(): void {
    while (running < concurrency && queue.length > 0) {
      const task = queue.shift()!;
      running += 1;
      // A task that throws synchronously is caught like one that rejects.
      void Promise.resolve()
        .then(task)
        .catch(onError)
        .finally(() => {
          running -= 1;
          pump();
          if (running === 0 && queue.length === 0) {
            const waiters = idleWaiters;
            idleWaiters = [];
            for (const wake of waiters) wake();
          }
        });
    }
  }

  return {
    run(task) {
      queue.push(task);
      pump();
    },
    settled() {
      if (running === 0 && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
