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

export function resumableUploads(engine: EngineContext, gate: MigrationGate, settings: ResumableSettings): ResumableUploads {
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
    status: async (uploadId) => toState(await gate(() => uploadStatus(engine, settings, uploadId))),
    async append(uploadId, options) {
      checkOffset(options.offset, 'offset');
      return toState(await gate(() => appendToUpload(engine, settings, uploadId, options)));
    },
    terminate: (uploadId) => gate(() => terminateUpload(engine, uploadId)),
    scope: (uploadId) => gate(() => uploadScope(engine, uploadId)),
  };
}
