// The seed interface (IAttachmentStore, API.md §1) over HTTP: `create()`
// streams one document upload, `get()` downloads by id, `stat()` is a HEAD.
import {
  AttacheError,
  extensionOf,
  newId,
  parseAttachmentRef,
  type AttachmentHeader,
  type AttachmentRef,
  type AttachmentResponse,
  type CreateAttachmentHandle,
  type CreateAttachmentOptions,
  type CreateAttachmentResult,
  type GetAttachmentParams,
} from '@attache/core';
import { requestBody, type BodySettings, type ProgressCallback } from './body.js';
import { attachmentOf, headerOf, type AttachmentJson } from './json.js';
import { call, type Transport } from './transport.js';

const REF_PREFIX = 'attachment://';

export interface SeedSettings {
  bodies: BodySettings;
  /** Namespace for documents; the server's document namespace when undefined. */
  namespace: string | undefined;
}

/** The header a download or HEAD answer describes. */
function headerOfResponse(response: Response): AttachmentHeader {
  const encodedName = response.headers.get('x-attachment-name') ?? '';
  const name = decodeURIComponent(encodedName);
  return {
    attachmentId: response.headers.get('x-attachment-id') ?? '',
    mimeType: response.headers.get('content-type') ?? 'application/octet-stream',
    // The download headers carry the name, not the stored extension.
    extension: extensionOf(name),
    hash: response.headers.get('x-attachment-crc32') ?? '',
  };
}

function idOf(refOrId: string): string {
  if (typeof refOrId !== 'string') throw new AttacheError('invalid_ref', 'attachment id must be a string');
  if (refOrId.startsWith(REF_PREFIX)) return parseAttachmentRef(refOrId).attachmentId;
  if (refOrId === '') throw new AttacheError('invalid_ref', 'attachment id is empty');
  return refOrId;
}

/** A sink whose bytes become the body of one document upload. */
export function createOverHttp(
  transport: Transport,
  settings: SeedSettings,
  options: CreateAttachmentOptions,
  onProgress?: ProgressCallback,
): CreateAttachmentHandle {
  const sizeBytes = options.sizeBytes;
  const channel = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: 1 }, { highWaterMark: 0 });
  const feed = channel.writable.getWriter();
  const request = new AbortController();
  // Set when this side refuses the upload, so `done` reports that, not the abort.
  let refusal: unknown;
  // Chosen here and sent as `id=`, so it is known before a byte is written (as in process).
  const attachmentId = newId();

  const done = (async (): Promise<CreateAttachmentResult> => {
    try {
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
        throw new AttacheError('size_mismatch', 'sizeBytes must be a non-negative integer');
      }
      if (options.extension !== undefined && options.extension !== extensionOf(options.fileName)) {
        // The HTTP API derives the extension from the name; refuse rather than store another one.
        throw new AttacheError('invalid_argument', 'over HTTP the extension is derived from fileName; an explicit different extension cannot be sent');
      }
      const { body, onUploadProgress } = await requestBody(channel.readable, settings.bodies, { totalBytes: sizeBytes, onProgress });
      const response = await call(transport, {
        method: 'POST',
        path: '/attachments',
        query: { namespace: settings.namespace, name: options.fileName, content_type: options.mimeType, id: attachmentId },
        body,
        onUploadProgress,
        signal: request.signal,
      });
      const json = (await response.json()) as { attachment: AttachmentJson };
      const attachment = attachmentOf(json.attachment);
      return { header: headerOf(attachment), ref: `${REF_PREFIX}${attachment.id}` };
    } catch (error) {
      const reason = refusal ?? error;
      // The writer sees the failure too, instead of hanging on backpressure.
      await feed.abort(reason).catch(() => {});
      throw reason;
    }
  })();
  // `done` still rejects for whoever awaits it; an ignored failure must not
  // crash the process as an unhandled rejection.
  done.catch(() => {});

  const refuse = async (error: unknown): Promise<never> => {
    refusal ??= error;
    // Breaking the request mid-body: the server keeps nothing of it.
    request.abort(refusal);
    await feed.abort(refusal).catch(() => {});
    throw refusal;
  };

  let received = 0;
  const sink = new WritableStream<Uint8Array>(
    {
      async write(chunk) {
        received += chunk.byteLength;
        if (received > sizeBytes) {
          await refuse(new AttacheError('size_mismatch', `body is larger than the declared ${sizeBytes} bytes`));
        }
        await feed.write(chunk);
      },
      async close() {
        if (received !== sizeBytes) {
          await refuse(new AttacheError('size_mismatch', `body has ${received} bytes, not the declared ${sizeBytes}`));
        }
        await feed.close().catch(() => {});
        await done;
      },
      async abort(reason) {
        refusal ??= reason;
        request.abort(reason);
        await feed.abort(reason).catch(() => {});
      },
    },
    { highWaterMark: 1 },
  );

  return {
    attachmentId,
    sink,
    done,
  };
}

function rangeHeader(params: GetAttachmentParams | undefined): Record<string, string> {
  const range = params?.range;
  if (!range) return {};
  if (!Number.isSafeInteger(range.start) || range.start < 0 || (range.end !== undefined && (!Number.isSafeInteger(range.end) || range.end < range.start))) {
    throw new AttacheError('range_not_satisfiable', 'range must have 0 ≤ start ≤ end');
  }
  return { range: `bytes=${range.start}-${range.end ?? ''}` };
}

export async function getOverHttp(
  transport: Transport,
  ref: AttachmentRef,
  params: GetAttachmentParams | undefined,
  signal: AbortSignal | undefined,
): Promise<AttachmentResponse> {
  const { attachmentId } = parseAttachmentRef(ref);
  signal?.throwIfAborted();
  const response = await call(transport, {
    method: 'GET',
    path: '/attachment',
    query: { id: attachmentId },
    headers: rangeHeader(params),
    signal,
  });
  return { header: headerOfResponse(response), body: response.body ?? new Blob([]).stream() };
}

export async function statOverHttp(transport: Transport, refOrId: string): Promise<AttachmentHeader> {
  const response = await call(transport, { method: 'HEAD', path: '/attachment', query: { id: idOf(refOrId) } });
  return headerOfResponse(response);
}
