// `store.uploads`: the resumable uploads of resumable.ts behind the
// TypeScript API's checks (names, namespaces, lengths), each call after the
// schema is migrated.
import type { EngineContext } from './engine-context.js';
import { AttacheError } from './errors.js';
import { checkCredentials } from './lease-rules.js';
import { normalizeMediaType } from './media-type.js';
import type { MigrationGate } from './migration-gate.js';
import { checkName, checkNamespace } from './names.js';
import {
  appendToUpload,
  createUpload,
  terminateUpload,
  uploadScope,
  uploadStatus,
  type ResumableSettings,
  type UploadStatus,
} from './resumable.js';
import type { ResumableUploads, UploadState } from './types.js';

function toState(status: UploadStatus): UploadState {
  return { ...status, expiresAt: new Date(status.expiresAt) };
}

function checkOffset(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new AttacheError('invalid_argument', `${what} must be a non-negative integer`);
  return value;
}

/**
 * How long a request waits for another request of this process that is
 * appending to the same upload. A client whose connection broke asks where
 * the upload stands (HEAD) at once, while the broken request is still
 * making its last bytes durable: waiting for it answers the offset that
 * includes them, so they are not sent again.
 */
const IN_FLIGHT_WAIT_MS = 3_000;

export function resumableUploads(engine: EngineContext, gate: MigrationGate, settings: ResumableSettings): ResumableUploads {
  const appending = new Map<string, Promise<unknown>>();

  /** Resolves true once no request of this process appends to `uploadId`, false after the wait ran out. */
  async function quiet(uploadId: string): Promise<boolean> {
    const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
    for (let running = appending.get(uploadId); running !== undefined; running = appending.get(uploadId)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        running.then(
          () => false,
          () => false,
        ),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), left))),
      ]);
      clearTimeout(timer);
      if (timedOut) return false;
    }
    return true;
  }

  return {
    async create(options) {
      const length = checkOffset(options.length, 'length');
      const name = checkName(options.name);
      const contentType = options.contentType?.trim() ? (normalizeMediaType(options.contentType) ?? options.contentType) : 'application/octet-stream';
      const lease = options.lease === undefined ? undefined : checkCredentials(options.lease);
      const documentNamespace = options.namespace === undefined ? settings.documents.namespace : checkNamespace(options.namespace);
      return toState(
        await gate(() =>
          createUpload(engine, settings, {
            length,
            name,
            contentType,
            metadata: options.metadata ?? '',
            documentNamespace,
            ...(lease === undefined ? {} : { lease }),
          }),
        ),
      );
    },
    async status(uploadId) {
      // Past the wait, the durable offset is the answer (another PATCH is streaming).
      await quiet(uploadId);
      return toState(await gate(() => uploadStatus(engine, settings, uploadId)));
    },
    async append(uploadId, options) {
      checkOffset(options.offset, 'offset');
      if (!(await quiet(uploadId))) {
        await options.body?.cancel().catch(() => {});
        throw new AttacheError('upload_locked', 'another request is appending to this upload; retry shortly', { retryAfterSeconds: 1 });
      }
      // Taken synchronously after the wait: no other request of this process can slip in between.
      const running = gate(() => appendToUpload(engine, settings, uploadId, options));
      appending.set(uploadId, running);
      try {
        return toState(await running);
      } finally {
        if (appending.get(uploadId) === running) appending.delete(uploadId);
      }
    },
    terminate: (uploadId) => gate(() => terminateUpload(engine, uploadId)),
    scope: (uploadId) => gate(() => uploadScope(engine, uploadId)),
  };
}
