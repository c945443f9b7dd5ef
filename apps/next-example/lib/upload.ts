// Browser side of one upload: the file's CRC-32 (sent as X-Attachment-CRC32,
// so the server verifies the bytes before staging them), then the raw body
// over XMLHttpRequest, whose `upload.onprogress` reports bytes on the wire.
// (@attache/client reports progress too, but in browsers it counts the bytes
// it collects into a Blob before sending, not the bytes sent; fetch has no
// upload progress.)
import type { LeaseInfo } from '@attache/core';
import { API_BASE_PATH } from './api-path';

export interface UploadProgress {
  sentBytes: number;
  totalBytes: number;
}

/** How an upload ended: staged, or refused with the server's error code (or `network` when no answer came). */
export type UploadOutcome = { ok: true } | { ok: false; status: number; code: string; detail: string };

export async function crc32Hex(file: Blob): Promise<string> {
  let crc = 0xffffffff;
  const reader = file.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (const byte of value) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  }
  return ((crc ^ 0xffffffff) >>> 0).toString(16).padStart(8, '0');
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function uploadUrl(lease: Pick<LeaseInfo, 'namespace' | 'key'>, name: string): string {
  const query = new URLSearchParams({ namespace: lease.namespace, key: lease.key, name });
  return `${API_BASE_PATH}/attachments?${query}`;
}

export function downloadUrl(attachment: { namespace: string; key: string; name: string }): string {
  const query = new URLSearchParams({ namespace: attachment.namespace, key: attachment.key, name: attachment.name });
  return `${API_BASE_PATH}/attachment?${query}`;
}

/** Stages `file` under the lease as `file.name`. Never rejects: failures come back as an outcome. */
export function uploadFile(
  lease: Pick<LeaseInfo, 'namespace' | 'key' | 'leaseId' | 'txnId' | 'fencingToken'>,
  file: File,
  crc32: string,
  onProgress: (progress: UploadProgress) => void,
): Promise<UploadOutcome> {
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open('POST', uploadUrl(lease, file.name));
    request.setRequestHeader('X-Lease-ID', lease.leaseId);
    request.setRequestHeader('X-Txn-ID', lease.txnId);
    request.setRequestHeader('X-Fencing-Token', String(lease.fencingToken));
    request.setRequestHeader('X-Attachment-CRC32', crc32);
    request.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    request.upload.onprogress = (event) => onProgress({ sentBytes: event.loaded, totalBytes: event.lengthComputable ? event.total : file.size });
    // Small bodies may be sent in one go without a progress event.
    request.upload.onload = () => onProgress({ sentBytes: file.size, totalBytes: file.size });
    request.onload = () => {
      if (request.status === 200) return resolve({ ok: true });
      resolve({ ok: false, status: request.status, ...errorOf(request.responseText) });
    };
    request.onerror = () => resolve({ ok: false, status: 0, code: 'network', detail: 'the connection closed before an answer arrived' });
    request.send(file);
  });
}

function errorOf(text: string): { code: string; detail: string } {
  try {
    const body = JSON.parse(text) as { error?: unknown; detail?: unknown };
    if (typeof body.error === 'string') return { code: body.error, detail: typeof body.detail === 'string' ? body.detail : '' };
  } catch {
    // Not attache's JSON (a proxy's error page, say): reported as unknown below.
  }
  return { code: 'unknown', detail: text.slice(0, 200) };
}
