// Named crash points of the commit protocol. Inert unless the environment
// variable ATTACHE_CRASH_AT names a point: then the process dies on the spot
// (SIGKILL, no cleanup), which is how the crash-safety tests simulate a
// power cut at each step.
export type CrashPoint =
  | 'upload.after-blob'
  | 'upload.after-row'
  | 'commit.after-metadata'
  | 'promote.after-copy'
  | 'promote.after-row'
  | 'gc.after-delete'
  | 'rollback.after-metadata'
  | 'sweep.after-expire'
  | 'delete.after-metadata'
  | 'sweep.after-garbage-delete';

interface ProcessLike {
  env?: Record<string, string | undefined>;
  pid?: number;
  kill?: (pid: number, signal: string) => void;
}

const processLike = (globalThis as { process?: ProcessLike }).process;
const armed = processLike?.env?.ATTACHE_CRASH_AT;

export function crashPoint(point: CrashPoint): void {
  if (armed === point && processLike?.kill && processLike.pid !== undefined) {
    processLike.kill(processLike.pid, 'SIGKILL');
  }
}
