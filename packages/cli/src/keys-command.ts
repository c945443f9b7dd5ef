// `attache keys rotate`: opens the storage `attache serve` uses (same
// environment), runs core's `rotateKeys` with a progress bar on stderr, and
// reports. With the embedded store it holds the data directory's lock like
// the server does (so the two never run at once) and, being the only
// process, deletes the replaced blobs before it exits; with PostgreSQL it
// runs beside the servers, whose sweeps delete them once readers are done.
import { createAttachmentStore, type KeyRotationReport, type MetadataStore } from '@attache/core';
import type { KeysRotateConfig } from './config.js';
import type { DataDirLock } from './data-dir-lock.js';
import { transferProgress } from './progress.js';
import { killSelfAt, lockEmbeddedDataDir, migrateOrExplain, openBlobs, openMetadata } from './serve.js';

export interface KeysCommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Aborts the rotation (bin.ts: SIGINT/SIGTERM); a rerun resumes. */
  signal?: AbortSignal;
}

const MIB = 1024 * 1024;

/** Returns the exit code: 0 all under the active key, 1 failures, objects remaining or storage trouble. */
export async function runKeysRotate(config: KeysRotateConfig, io: KeysCommandIo): Promise<number> {
  const embedded = config.metadata.kind === 'sqlite';
  let lock: DataDirLock | undefined;
  let metadata: MetadataStore | undefined;
  try {
    lock = embedded ? await lockEmbeddedDataDir(config.dataDir) : undefined;
    metadata = await openMetadata(config.metadata);
    await migrateOrExplain(metadata, config.metadata, config.dataDir);
  } catch (error) {
    await metadata?.close().catch(() => undefined);
    lock?.release();
    io.stderr.write(`attache: cannot open the storage: ${oneLine(error)}\n`);
    return 1;
  }
  try {
    const blobs = await openBlobs(config.blobs).catch(async (error: unknown) => {
      await metadata.close().catch(() => undefined);
      throw error;
    });
    const store = createAttachmentStore({
      metadata,
      blobs,
      // As the server stores them: small re-encrypted blobs go inline too.
      inlineBlobMaxBytes: config.inlineBlobMaxBytes,
      encryption: config.encryption,
      ...(config.crashAt === undefined ? {} : { onCrashPoint: killSelfAt(config.crashAt) }),
    });
    try {
      let progressBar: ReturnType<typeof transferProgress> | undefined;
      const report = await store.rotateKeys({
        encryptPlaintext: config.encryptPlaintext,
        ...(config.batchSize === undefined ? {} : { batchSize: config.batchSize }),
        ...(io.signal === undefined ? {} : { signal: io.signal }),
        onProgress(progress) {
          // The first call knows the total; the bar is drawn only on a terminal.
          progressBar ??= transferProgress(io.stderr, `rotate to ${progress.activeKeyId}`, progress.totalBytes > 0 ? progress.totalBytes : undefined);
          progressBar.update(progress.doneBytes);
        },
      });
      progressBar?.stop();
      // The only process on an embedded store: no reader can be streaming the replaced blobs.
      const sweep = embedded ? await store.sweep() : undefined;
      writeReport(io, config, report, sweep?.garbageDeleted);
      return report.failed.length === 0 && report.remaining === 0 ? 0 : 1;
    } finally {
      await store.close();
    }
  } catch (error) {
    io.stderr.write(`attache: key rotation stopped: ${oneLine(error)}\n`);
    io.stderr.write('attache: what was re-encrypted so far stays so; run "attache keys rotate" again to finish\n');
    return 1;
  } finally {
    lock?.release();
  }
}

function writeReport(io: KeysCommandIo, config: KeysRotateConfig, report: KeyRotationReport, deletedBlobs: number | undefined): void {
  for (const failure of report.failed) {
    io.stderr.write(
      `attache: not rotated: ${failure.namespace}/${failure.key} ${failure.name} (id ${failure.attachmentId}, key ${failure.keyId ?? 'none: plaintext'}): ${failure.code}: ${oneLine(failure.message)}\n`,
    );
  }
  if (config.json) {
    io.stdout.write(`${JSON.stringify({ ...report, ...(deletedBlobs === undefined ? {} : { deletedBlobs }) })}\n`);
    return;
  }
  const parts = [
    `rotated ${report.rotated} object${report.rotated === 1 ? '' : 's'} (${(report.rotatedBytes / MIB).toFixed(1)} MiB) to key ${report.activeKeyId}`,
  ];
  if (report.superseded > 0) parts.push(`${report.superseded} deleted or replaced meanwhile`);
  if (report.failed.length > 0) parts.push(`${report.failed.length} failed`);
  parts.push(`${report.remaining} remaining under other keys${config.encryptPlaintext ? ' or in plaintext' : ''}`);
  io.stdout.write(`${parts.join('; ')}\n`);
  if (report.remaining === 0) {
    io.stdout.write(
      deletedBlobs === undefined
        ? 'the old keys are no longer needed once the servers have the same active key; the servers\' sweeps delete the replaced blobs\n'
        : `deleted ${deletedBlobs} replaced blob${deletedBlobs === 1 ? '' : 's'}; the old keys are no longer needed\n`,
    );
  }
}

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
}
