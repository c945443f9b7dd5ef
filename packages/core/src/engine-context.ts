// What every engine module is handed: the two ports, the clock, the
// store-wide settings (limits, the keyring), this process's key waiters,
// its background work and the host's crash-point hook. Built once by
// createAttachmentStore (store.ts); read-only after that.
import type { BackgroundWork } from './background.js';
import type { CrashPoint } from './crash-points.js';
import type { Keyring } from './crypto.js';
import type { KeyWaiters } from './key-waiters.js';
import type { BlobStore, MetadataStore } from './ports.js';

export interface EngineContext {
  readonly metadata: MetadataStore;
  readonly blobs: BlobStore;
  now(): number;
  /** Store-wide limit in bytes; 0 = unlimited. */
  readonly maxBytes: number;
  readonly orphanGraceMs: number;
  /** How long garbage waits before deletion, for reads in flight (`BlobStore.deleteGraceSeconds`); 0 = delete at once. */
  readonly deleteGraceMs: number;
  readonly waiters: KeyWaiters;
  /** Encryption at rest: new writes use its active key. Undefined: stored in plaintext. */
  readonly keyring: Keyring | undefined;
  /** Promotion and garbage deletion after a commit, which no caller waits for. */
  readonly background: BackgroundWork;
  /** Marks a named step of the commit protocol (a no-op unless the host passed `onCrashPoint`). */
  crashPoint(point: CrashPoint): void;
}
