// Every public call of the store waits for the metadata schema first. The
// migration runs once, on the first call; a failed one is retried on the
// next call instead of failing the store for good.
import type { MetadataStore } from './ports.js';

/** Runs `fn` once the schema is migrated. */
export type MigrationGate = <T>(fn: () => Promise<T>) => Promise<T>;

export function migrationGate(metadata: MetadataStore): MigrationGate {
  let migrated: Promise<void> | undefined;
  return async (fn) => {
    try {
      await (migrated ??= metadata.migrate());
    } catch (error) {
      migrated = undefined;
      throw error;
    }
    return fn();
  };
}
