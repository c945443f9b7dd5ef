// A lease held over HTTP: every call carries the lease id, the transaction
// id and the fencing token (docs/http.md "Lease headers").
import { AttacheError, type Attachment, type AttachmentBody, type AttachmentSelector, type AttachResult, type LeaseInfo } from '@attache/core';
import { requestBody, type BodySettings, type ProgressCallback } from './body.js';
import { attachmentOf, leaseInfoOf, type AttachmentJson, type LeaseJson } from './json.js';
import { call, callJson, type Transport } from './transport.js';

export interface ClientAttachOptions {
  name: string;
  body: AttachmentBody | Blob;
  contentType?: string;
  maxBytes?: number;
  preventOverwrite?: boolean;
  /** Declared size, for progress totals. */
  sizeBytes?: number;
  /**
   * The bytes' CRC-32 and/or SHA-256 (hex), as the in-process `attach`
   * takes them: sent as `X-Attachment-CRC32` / `Content-Digest`, so the
   * server refuses damaged bytes (`checksum_mismatch`) and keeps nothing.
   */
  expectedCrc32?: string;
  expectedSha256?: string;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Request headers that make the server verify the bytes it receives. */
function checksumHeaders(options: Pick<ClientAttachOptions, 'expectedCrc32' | 'expectedSha256'>): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.expectedCrc32 !== undefined) headers['x-attachment-crc32'] = options.expectedCrc32;
  if (options.expectedSha256 !== undefined) headers['content-digest'] = `sha-256=:${hexToBase64(options.expectedSha256)}:`;
  return headers;
}

function hexToBase64(hex: string): string {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new AttacheError('invalid_argument', 'expectedSha256 must be hex');
  let binary = '';
  for (let i = 0; i < hex.length; i += 2) binary += String.fromCharCode(Number.parseInt(hex.slice(i, i + 2), 16));
  return btoa(binary);
}

export interface ClientLease extends LeaseInfo {
  attach(options: ClientAttachOptions): Promise<AttachResult>;
  list(): Promise<Attachment[]>;
  /** Downloads one attachment as this lease sees it (staged writes included). */
  get(selector: AttachmentSelector, signal?: AbortSignal): Promise<{ attachment: Pick<Attachment, 'id' | 'name' | 'size' | 'contentType' | 'crc32' | 'sha256'>; body: ReadableStream<Uint8Array> }>;
  delete(selector: AttachmentSelector): Promise<{ deleted: boolean }>;
  deleteAll(): Promise<{ deleted: number }>;
  keepalive(options: { ttlSeconds: number }): Promise<LeaseInfo>;
  /** Renews the lease every `everySeconds` until released; returns a stop function. Failures go to `onError`. */
  keepAutomatically(options: { ttlSeconds: number; everySeconds?: number; onError?: (error: unknown) => void }): () => void;
  release(options?: { rollback?: boolean }): Promise<{ released: true }>;
}

export function selectorQuery(selector: AttachmentSelector): { name?: string; id?: string } {
  return selector.name !== undefined ? { name: selector.name } : { id: selector.id };
}

export function downloadedAttachment(response: Response): Pick<Attachment, 'id' | 'name' | 'size' | 'contentType' | 'crc32' | 'sha256'> {
  return {
    id: response.headers.get('x-attachment-id') ?? '',
    name: decodeURIComponent(response.headers.get('x-attachment-name') ?? ''),
    size: Number(response.headers.get('x-attachment-size') ?? NaN),
    contentType: response.headers.get('content-type') ?? 'application/octet-stream',
    crc32: response.headers.get('x-attachment-crc32') ?? '',
    sha256: response.headers.get('x-attachment-sha256') ?? '',
  };
}

export function leaseOverHttp(transport: Transport, acquired: LeaseInfo, bodies: BodySettings): ClientLease {
  let info = acquired;
  const where = () => ({ namespace: info.namespace, key: info.key });
  const leaseHeaders = () => ({
    'x-lease-id': info.leaseId,
    'x-txn-id': info.txnId,
    'x-fencing-token': String(info.fencingToken),
  });
  const jsonBody = (fields: Record<string, unknown>) => ({
    headers: { 'content-type': 'application/json', 'x-fencing-token': String(info.fencingToken) },
    body: JSON.stringify({ namespace: info.namespace, key: info.key, lease_id: info.leaseId, txn_id: info.txnId, ...fields }),
  });
  let stopKeepalive: (() => void) | undefined;

  const lease: ClientLease = {
    get leaseId() { return info.leaseId; },
    get txnId() { return info.txnId; },
    get fencingToken() { return info.fencingToken; },
    get expiresAt() { return info.expiresAt; },
    get namespace() { return info.namespace; },
    get key() { return info.key; },
    get owner() { return info.owner; },

    async attach(options) {
      const { body, onUploadProgress } = await requestBody(options.body, bodies, { totalBytes: options.sizeBytes, onProgress: options.onProgress });
      const json = await callJson<{ attachment: AttachmentJson; noop: boolean }>(transport, {
        method: 'POST',
        path: '/attachments',
        query: {
          ...where(),
          name: options.name,
          content_type: options.contentType,
          max_bytes: options.maxBytes,
          prevent_overwrite: options.preventOverwrite ? true : undefined,
        },
        headers: { ...leaseHeaders(), ...checksumHeaders(options) },
        body,
        onUploadProgress,
        signal: options.signal,
      });
      return { attachment: attachmentOf(json.attachment), noop: json.noop === true };
    },

    async list() {
      const json = await callJson<{ attachments: AttachmentJson[] }>(transport, { method: 'GET', path: '/attachments', query: where(), headers: leaseHeaders() });
      return json.attachments.map(attachmentOf);
    },

    async get(selector, signal) {
      const response = await call(transport, {
        method: 'GET',
        path: '/attachment',
        query: { ...where(), ...selectorQuery(selector) },
        headers: leaseHeaders(),
        signal,
      });
      return { attachment: downloadedAttachment(response), body: response.body ?? new Blob([]).stream() };
    },

    async delete(selector) {
      return callJson<{ deleted: boolean }>(transport, {
        method: 'DELETE',
        path: '/attachment',
        query: { ...where(), ...selectorQuery(selector) },
        headers: leaseHeaders(),
      });
    },

    async deleteAll() {
      return callJson<{ deleted: number }>(transport, { method: 'DELETE', path: '/attachments', query: where(), headers: leaseHeaders() });
    },

    async keepalive({ ttlSeconds }) {
      const json = await callJson<{ expires_at_unix: number; fencing_token: number }>(transport, {
        method: 'POST',
        path: '/keepalive',
        ...jsonBody({ ttl_seconds: ttlSeconds }),
      });
      info = { ...info, expiresAt: new Date(json.expires_at_unix * 1000), fencingToken: json.fencing_token };
      return { ...info };
    },

    keepAutomatically({ ttlSeconds, everySeconds = ttlSeconds / 3, onError }) {
      stopKeepalive?.();
      const timer = setInterval(() => {
        lease.keepalive({ ttlSeconds }).catch((error: unknown) => onError?.(error));
      }, everySeconds * 1000);
      stopKeepalive = () => clearInterval(timer);
      return stopKeepalive;
    },

    async release(options = {}) {
      stopKeepalive?.();
      await callJson<{ released: boolean }>(transport, {
        method: 'POST',
        path: '/release',
        ...jsonBody(options.rollback ? { rollback: true } : {}),
      });
      return { released: true };
    },
  };
  return lease;
}

export function acquiredLease(json: LeaseJson): LeaseInfo {
  return leaseInfoOf(json);
}
