// One fsync shared by everyone waiting for durability, for stores that
// fsync a file or directory many requests write to. SQLite with
// `synchronous = FULL` fsyncs its WAL inside COMMIT, on the caller's thread:
// on Node that blocks the event loop for every commit. Instead the database
// commits with `synchronous = NORMAL` (no fsync at COMMIT; checkpoints still
// sync) and we fsync the WAL in the thread pool before answering anyone
// whose transaction committed; the event loop runs meanwhile, and commits
// that land while one fsync runs share the next. Acknowledged commits are
// exactly as durable as with FULL, which does nothing more than this fsync.
// The fs blob store shares directory fsyncs the same way. Pure JavaScript:
// the caller supplies the fsync.

/** Shares fsyncs of one file among callers. */
export interface SharedSync {
  /**
   * Resolves once an fsync that began after this call has finished (so it
   * covers everything written before the call). Rejects with the first
   * fsync failure, then and forever after: after a failed fsync the kernel
   * may have dropped dirty pages, so nothing written before can be trusted
   * durable again.
   */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface SharedSyncTarget {
  /** fsyncs the file (opening it the first time). */
  fsync(): Promise<void>;
  close(): Promise<void>;
}

export function sharedSync(target: SharedSyncTarget): SharedSync {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;

  const start = (): Promise<void> => {
    const current = target.fsync().catch((error: unknown) => {
      failure ??= { error };
      throw failure.error;
    });
    running = current;
    const forget = (): void => {
      if (running === current) running = undefined;
    };
    current.then(forget, forget);
    return current;
  };

  return {
    sync(): Promise<void> {
      if (failure) return Promise.reject(failure.error);
      if (running === undefined) return start();
      // An fsync is running, but it may have begun before the caller's
      // writes: wait for the one after it, which all callers meanwhile share.
      next ??= running
        .catch(() => {})
        .then(() => {
          next = undefined;
          if (failure) throw failure.error;
          return start();
        });
      return next;
    },
    async close(): Promise<void> {
      await Promise.allSettled([running, next]);
      await target.close();
    },
  };
}
