// The seed interface (`IAttachmentStore`, seed-interface.ts) over the
// document face: `create()` hands out a sink that feeds one document upload,
// `stat()` and `get()` read any committed attachment by id or ref.
import { openRow, toAttachment, type StageOptions } from './attachments.js';
import { createDocuments, type DocumentSettings } from './documents.js';
import type { EngineContext } from './engine-context.js';
import { AttacheError } from './errors.js';
import { newId } from './ids.js';
import type { MigrationGate } from './migration-gate.js';
import { attachmentIdOf, parseAttachmentRef } from './refs.js';
import type {
  AttachmentHeader,
  AttachmentRef,
  AttachmentResponse,
  CreateAttachmentHandle,
  CreateAttachmentOptions,
  CreateAttachmentResult,
  GetAttachmentParams,
  IAttachmentStore,
} from './seed-interface.js';
import type { Attachment, OpenOptions } from './types.js';

function header(attachment: Attachment): AttachmentHeader {
  return {
    attachmentId: attachment.id,
    mimeType: attachment.contentType,
    extension: attachment.extension,
    hash: attachment.crc32,
  };
}

export function seedFace(engine: EngineContext, gate: MigrationGate, documents: DocumentSettings): IAttachmentStore {
  return {
    create(options: CreateAttachmentOptions): CreateAttachmentHandle {
      const attachmentId = newId();
      const sizeBytes = options.sizeBytes;
      // The engine reads `channel.readable`; the caller's `sink` feeds it. No
      // queue on either side, so the caller's writes wait for the blob store.
      const channel = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: 1 }, { highWaterMark: 0 });
      const feed = channel.writable.getWriter();
      const done = (async (): Promise<CreateAttachmentResult> => {
        try {
          if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
            throw new AttacheError('size_mismatch', 'sizeBytes must be a non-negative integer');
          }
          // `fileName` is checked with the upload's other fields, as it is staged.
          const upload: StageOptions = {
            name: options.fileName,
            body: channel.readable,
            contentType: options.mimeType,
            expectedSize: sizeBytes,
            attachmentId,
          };
          if (options.extension !== undefined) upload.extension = options.extension;
          const [attachment] = await gate(() => createDocuments(engine, documents, [upload], documents.namespace));
          return { header: header(attachment!), ref: `attachment://${attachment!.id}` };
        } catch (error) {
          // The writer sees the failure too, instead of hanging on backpressure.
          await feed.abort(error).catch(() => {});
          throw error;
        }
      })();
      // `done` still rejects for whoever awaits it; an ignored failure must
      // not crash the process as an unhandled rejection.
      done.catch(() => {});

      let received = 0;
      const sink = new WritableStream<Uint8Array>(
        {
          async write(chunk) {
            received += chunk instanceof Uint8Array ? chunk.byteLength : 0;
            if (received > sizeBytes) {
              // Refused here, before the engine reads it: the caller's source
              // stops at the first chunk too many.
              const error = new AttacheError('size_mismatch', `body is larger than the declared ${sizeBytes} bytes`);
              await feed.abort(error).catch(() => {});
              throw error;
            }
            await feed.write(chunk);
          },
          // Resolves only once the attachment is stored, and rejects as `done`
          // does (e.g. `size_mismatch` when fewer bytes arrived), so
          // `source.pipeTo(sink)` reports the outcome of the upload.
          async close() {
            await feed.close().catch(() => {});
            await done;
          },
          async abort(reason) {
            await feed.abort(reason).catch(() => {});
          },
        },
        { highWaterMark: 1 },
      );
      return { attachmentId, sink, done };
    },

    async stat(attachmentId: string): Promise<AttachmentHeader> {
      // Accepts the ref too: documents store refs, and `stat(ref)` type-checks.
      const id = attachmentIdOf(attachmentId);
      const row = await gate(() => engine.metadata.transaction((tx) => tx.getCommittedById(id)));
      if (!row) throw new AttacheError('attachment_not_found', `attachment ${id} not found`);
      return header(toAttachment(row));
    },

    async get(ref: AttachmentRef, params?: GetAttachmentParams, abortSignal?: AbortSignal): Promise<AttachmentResponse> {
      const { attachmentId: id } = parseAttachmentRef(ref);
      const openOptions: OpenOptions = {};
      if (params?.range) openOptions.range = params.range;
      if (abortSignal) openOptions.signal = abortSignal;
      const opened = await gate(() =>
        openRow(engine, () => engine.metadata.transaction((tx) => tx.getCommittedById(id)), openOptions),
      );
      return { header: header(opened.attachment), body: opened.body };
    },
  };
}
