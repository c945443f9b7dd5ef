// Writing a file while the next chunks are being read, as fs.WriteStream
// does under `pipe`: one write is in flight at a time, chunks that arrive
// meanwhile are gathered and go out together in one `writev` once it
// finishes. Reading no longer waits for the disk (nor the disk for the
// socket), while memory stays bounded: past `maxGatheredBytes` the caller
// waits for the write in flight.

/** The one call this needs of an open file (a `FileHandle` has it). */
export interface WritableFile {
  writev(buffers: Uint8Array[]): Promise<{ bytesWritten: number }>;
}

/** Writes every byte of `chunks` at the file position (writev may write fewer than asked). */
async function writeAll(handle: WritableFile, chunks: Uint8Array[]): Promise<void> {
  let rest = chunks;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest);
    let skip = 0;
    while (skip < rest.length && bytesWritten >= rest[skip]!.byteLength) bytesWritten -= rest[skip++]!.byteLength;
    rest = rest.slice(skip);
    if (bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten);
  }
}

export interface WriteBehind {
  /** Queues `chunk` (which the caller must not change afterwards); resolves at once unless too much is gathered. */
  write(chunk: Uint8Array): Promise<void>;
  /** Resolves once every queued byte is written; rejects with the first write's failure. */
  finish(): Promise<void>;
  /** Resolves once no write is in flight, whatever happened (before closing the handle after a failure). */
  settled(): Promise<void>;
}

export function writeBehind(handle: WritableFile, maxGatheredBytes: number): WriteBehind {
  let gathered: Uint8Array[] = [];
  let gatheredBytes = 0;
  let inFlight: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;

  const startNext = (): void => {
    if (inFlight !== undefined || gathered.length === 0 || failure !== undefined) return;
    const chunks = gathered;
    gathered = [];
    gatheredBytes = 0;
    inFlight = writeAll(handle, chunks).then(
      () => {
        inFlight = undefined;
        startNext();
      },
      (error: unknown) => {
        failure ??= { error };
        inFlight = undefined;
      },
    );
  };

  const settled = async (): Promise<void> => {
    while (inFlight !== undefined) await inFlight;
  };

  const check = (): void => {
    if (failure !== undefined) throw failure.error;
  };

  return {
    async write(chunk) {
      check();
      if (chunk.byteLength === 0) return;
      gathered.push(chunk);
      gatheredBytes += chunk.byteLength;
      startNext();
      // Backpressure: wait until what is gathered fits again.
      while (gatheredBytes > maxGatheredBytes && inFlight !== undefined) await inFlight;
      check();
    },
    async finish() {
      // Each write that completes starts the next with what was gathered, so none in flight means none left.
      await settled();
      check();
    },
    settled,
  };
}
