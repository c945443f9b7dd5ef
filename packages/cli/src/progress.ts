// A progress bar on stderr for `put` and `get` when stderr is a terminal
// (drawn by cli-progress); nothing at all when stderr is piped or
// redirected, so scripts keep seeing only the one-line errors.
import { Presets, SingleBar } from 'cli-progress';

export interface TransferProgress {
  /** Bytes moved so far. */
  update(bytes: number): void;
  /** Draws the final state and ends the line. */
  stop(): void;
}

const SILENT: TransferProgress = { update() {}, stop() {} };

const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);

/** `label` names the transfer (`put report.pdf`); `totalBytes` unknown → a byte counter instead of a bar. */
export function transferProgress(stderr: NodeJS.WritableStream, label: string, totalBytes: number | undefined): TransferProgress {
  if ((stderr as { isTTY?: boolean }).isTTY !== true) return SILENT;
  const known = totalBytes !== undefined && Number.isFinite(totalBytes) && totalBytes > 0;
  const bar = new SingleBar(
    {
      stream: stderr,
      format: known ? `${label} {bar} {percentage}% | {sent}/{total_mib} MiB | {rate} MiB/s` : `${label} {sent} MiB | {rate} MiB/s`,
      hideCursor: true,
      barsize: 30,
      fps: 10,
    },
    Presets.shades_classic,
  );
  const started = Date.now();
  const payload = (bytes: number) => ({
    sent: mib(bytes),
    total_mib: known ? mib(totalBytes) : '?',
    rate: mib(bytes / Math.max((Date.now() - started) / 1000, 0.001)),
  });
  // Without a total the bar is not drawn (the format has no {bar}); 1 keeps the library's arithmetic finite.
  bar.start(known ? totalBytes : 1, 0, payload(0));
  let last = 0;
  return {
    update(bytes) {
      last = bytes;
      bar.update(known ? bytes : 0, payload(bytes));
    },
    stop() {
      bar.update(known ? last : 0, payload(last));
      bar.stop();
    },
  };
}
