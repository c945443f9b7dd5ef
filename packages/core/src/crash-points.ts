// Named crash points of the commit protocol (see commit.ts) and of key
// rotation (key-rotation.ts). Core only names
// them: the engine calls the host's `onCrashPoint` hook at each one, and the
// host decides what happens there. `attache serve` kills itself (SIGKILL, no
// cleanup) at the point named by ATTACHE_CRASH_AT, which is how the
// crash-safety tests simulate a power cut at each step; everyone else passes
// no hook and the points cost nothing.
export const CRASH_POINTS = [
  'upload.after-blob',
  'upload.after-row',
  'commit.after-metadata',
  'promote.after-copy',
  'promote.after-row',
  'gc.after-delete',
  'rollback.after-metadata',
  'sweep.after-expire',
  'delete.after-metadata',
  'sweep.after-garbage-delete',
  'rotate.after-blob',
  'rotate.after-row',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

/** Called synchronously at each crash point; whatever it throws propagates like a storage failure would. */
export type CrashPointHook = (point: CrashPoint) => void;

export function isCrashPoint(value: string): value is CrashPoint {
  return (CRASH_POINTS as readonly string[]).includes(value);
}
