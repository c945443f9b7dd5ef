// In-process wake-ups for blocking acquires.

/**
 * Wakes blocking acquires in this process as soon as a key is released.
 * Other processes are not notified; their waiters poll with a bounded
 * backoff, so this is an optimisation, never a correctness requirement.
 */
export class KeyWaiters {
  readonly #waiting = new Map<string, Set<() => void>>();

  wait(namespace: string, key: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const id = `${namespace}\u0000${key}`;
    return new Promise<void>((resolve) => {
      const set = this.#waiting.get(id) ?? new Set();
      this.#waiting.set(id, set);
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0) this.#waiting.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  notify(namespace: string, key: string): void {
    for (const wake of [...(this.#waiting.get(`${namespace}\u0000${key}`) ?? [])]) wake();
  }
}
