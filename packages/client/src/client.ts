// `createClient`: the seed `IAttachmentStore`, leases, public reads and the
// document face of an attache server, over `fetch`.
import type { AcquireOptions, Attachment, AttachmentSelector, IAttachmentStore } from '@attache/core';
import { canStreamRequestBodies, requestBody, type BodySettings, type ProgressCallback } from './body.js';
import { attachmentOf, leaseInfoOf, type AttachmentJson, type LeaseJson } from './json.js';
import { downloadedAttachment, leaseOverHttp, selectorQuery, type ClientLease } from './lease.js';
import { createOverHttp, getOverHttp, statOverHttp } from './seed.js';
import { call, callJson, type FetchFunction, type RetryPolicy, type Transport } from './transport.js';
import { hasXmlHttpRequest, xhrFetch } from './xhr.js';

export interface ClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:3000/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Default: the global `fetch`. */
  fetch?: FetchFunction;
  /** Bounded retries of 503 `unavailable` and of `waiting` for acquires that wait. */
  retry?: Partial<RetryPolicy>;
  /**
   * Stream request bodies (default: where the runtime can; never in
   * browsers, which collect into a Blob and, unless you pass your own
   * `fetch`, send it with XMLHttpRequest so progress counts bytes sent).
   */
  streamUploads?: boolean;
  /** Namespace for documents created through `create()` / `upload()`; the server's default otherwise. */
  documentNamespace?: string;
}

export type ClientAcquireOptions = Omit<AcquireOptions, 'signal'> & { signal?: AbortSignal };

export interface ReadSelector {
  namespace?: string;
  key?: string;
}

export interface AttacheClient extends IAttachmentStore {
  /** `create()` with upload progress. */
  createWithProgress(options: Parameters<IAttachmentStore['create']>[0], onProgress: ProgressCallback): ReturnType<IAttachmentStore['create']>;
  acquire(options: ClientAcquireOptions): Promise<ClientLease>;
  /**
   * A lease acquired elsewhere (another process, the CLI's exported
   * variables), from its credentials. `expiresAt` is unknown (an invalid
   * Date) and `owner` empty until a `keepalive` answers.
   */
  resume(credentials: { leaseId: string; txnId: string; fencingToken: number; key: string; namespace?: string }): ClientLease;
  /** Committed attachments of a key. */
  listAttachments(options: { namespace?: string; key: string }): Promise<Attachment[]>;
  /** Downloads a committed attachment: by key and name, or by id alone. */
  getAttachment(
    selector: ReadSelector & AttachmentSelector,
    signal?: AbortSignal,
  ): Promise<{ attachment: ReturnType<typeof downloadedAttachment>; body: ReadableStream<Uint8Array> }>;
  /** The document face: a new committed attachment, its own key. */
  upload(
    file: Blob | { name: string; body: Blob | ReadableStream<Uint8Array> | Uint8Array; contentType?: string; sizeBytes?: number },
    options?: { name?: string; contentType?: string; namespace?: string; onProgress?: ProgressCallback; signal?: AbortSignal },
  ): Promise<Attachment>;
}

export function createClient(options: ClientOptions): AttacheClient {
  const fetchFunction = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const transport: Transport = {
    baseUrl: options.baseUrl,
    token: options.token,
    fetch: fetchFunction,
    retry: { attempts: options.retry?.attempts ?? 3, maxDelayMs: options.retry?.maxDelayMs ?? 10_000 },
    // Your own fetch is used for everything; without one, browsers upload with XMLHttpRequest for progress.
    fetchWithUploadProgress: options.fetch === undefined && hasXmlHttpRequest() ? xhrFetch : undefined,
  };
  const bodies: BodySettings = {
    streaming: options.streamUploads ?? canStreamRequestBodies(),
    sentWithProgress: transport.fetchWithUploadProgress !== undefined,
  };
  const seed = { bodies, namespace: options.documentNamespace };

  return {
    create: (createOptions) => createOverHttp(transport, seed, createOptions),
    createWithProgress: (createOptions, onProgress) => createOverHttp(transport, seed, createOptions, onProgress),
    get: (ref, params, signal) => getOverHttp(transport, ref, params, signal),
    stat: (refOrId) => statOverHttp(transport, refOrId),

    async acquire(acquire) {
      const json = await callJson<LeaseJson>(transport, {
        method: 'POST',
        path: '/acquire',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          namespace: acquire.namespace,
          key: acquire.key,
          ttl_seconds: acquire.ttlSeconds,
          owner: acquire.owner,
          block_seconds: acquire.blockSeconds,
          txn_id: acquire.txnId,
        }),
        signal: acquire.signal,
        // Only a caller who asked to wait is made to wait longer.
        retryWaiting: acquire.blockSeconds !== undefined && acquire.blockSeconds >= 0,
      });
      return leaseOverHttp(transport, leaseInfoOf(json), bodies);
    },

    resume(credentials) {
      return leaseOverHttp(
        transport,
        { ...credentials, namespace: credentials.namespace ?? 'default', owner: '', expiresAt: new Date(Number.NaN) },
        bodies,
      );
    },

    async listAttachments({ namespace, key }) {
      const json = await callJson<{ attachments: AttachmentJson[] }>(transport, {
        method: 'GET',
        path: '/attachments',
        query: { namespace, key, public: true },
      });
      return json.attachments.map(attachmentOf);
    },

    async getAttachment(selector, signal) {
      const response = await call(transport, {
        method: 'GET',
        path: '/attachment',
        query: { namespace: selector.namespace, key: selector.key, ...selectorQuery(selector), public: true },
        signal,
      });
      return { attachment: downloadedAttachment(response), body: response.body ?? new Blob([]).stream() };
    },

    async upload(file, uploadOptions = {}) {
      const isBlob = file instanceof Blob;
      const name = uploadOptions.name ?? (isBlob ? (file as Blob & { name?: string }).name : file.name);
      const contentType = uploadOptions.contentType ?? (isBlob ? file.type || undefined : file.contentType);
      const source = isBlob ? file : file.body;
      const totalBytes = isBlob ? file.size : file.sizeBytes;
      const { body, onUploadProgress } = await requestBody(source, bodies, { totalBytes, onProgress: uploadOptions.onProgress });
      const json = await callJson<{ attachment: AttachmentJson }>(transport, {
        method: 'POST',
        path: '/attachments',
        query: { namespace: uploadOptions.namespace ?? options.documentNamespace, name, content_type: contentType },
        body,
        onUploadProgress,
        signal: uploadOptions.signal,
      });
      return attachmentOf(json.attachment);
    },
  };
}
