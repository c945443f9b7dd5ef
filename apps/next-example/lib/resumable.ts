// Resumable uploads from the page: Uppy with its Tus plugin, pointed at the
// tus endpoint attache serves (/v1/uploads). With the lease's key and
// headers, the upload lands in the lease's transaction as a staged file
// once its last byte arrives. A cut connection is resumed from the bytes the
// server holds (Uppy retries: HEAD for the offset, then PATCH from there).
import type { LeaseInfo } from '@attache/core';
import { Uppy } from '@uppy/core';
import Tus from '@uppy/tus';
import { API_BASE_PATH } from './api-path';

/** Bytes per PATCH: a cut costs at most this much of the file again. */
export const RESUMABLE_CHUNK_BYTES = 1024 * 1024;

/** Why a resumable upload failed: attache's error code (or `network`) and its detail. */
export class ResumableUploadError extends Error {
  constructor(
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

type UploadingLease = Pick<LeaseInfo, 'namespace' | 'key' | 'leaseId' | 'txnId' | 'fencingToken'>;

/** Stages `file` under the lease through tus; rejects with a ResumableUploadError. */
export async function uploadResumable(
  lease: UploadingLease,
  file: File,
  onProgress: (sentBytes: number) => void,
): Promise<void> {
  const query = new URLSearchParams({ namespace: lease.namespace, key: lease.key });
  // The body of the last refusal (attache's JSON error), whatever shape Uppy gives its error.
  let refusal: string | undefined;
  const uppy = new Uppy({ autoProceed: false }).use(Tus, {
    endpoint: `${API_BASE_PATH}/uploads?${query}`,
    headers: { 'X-Lease-ID': lease.leaseId, 'X-Txn-ID': lease.txnId, 'X-Fencing-Token': String(lease.fencingToken) },
    chunkSize: RESUMABLE_CHUNK_BYTES,
    retryDelays: [0, 500, 1000, 2000],
    // A finished upload is not offered for resuming again (the lease may be gone).
    removeFingerprintOnSuccess: true,
    onAfterResponse: (_request, response) => {
      if (response.getStatus() >= 400) refusal = response.getBody();
    },
  });
  let failure: ResumableUploadError | undefined;
  uppy.on('upload-progress', (_file, progress) => onProgress(progress.bytesUploaded));
  uppy.on('upload-error', (_file, error) => {
    failure = errorOf(error, refusal);
  });
  try {
    uppy.addFile({ name: file.name, type: file.type || 'application/octet-stream', data: file, source: 'attache-page' });
    const result = await uppy.upload();
    if (failure) throw failure;
    if (!result || result.failed?.length) throw new ResumableUploadError('network', 'the upload did not finish');
  } finally {
    uppy.destroy();
  }
}

/** attache's JSON error from the refused tus request, else a network failure. */
function errorOf(error: { message: string }, refusal: string | undefined): ResumableUploadError {
  try {
    const parsed = JSON.parse(refusal ?? '') as { error?: unknown; detail?: unknown };
    if (typeof parsed.error === 'string') return new ResumableUploadError(parsed.error, typeof parsed.detail === 'string' ? parsed.detail : '');
  } catch {
    // No answer at all, or not attache's JSON (a proxy's page).
  }
  return new ResumableUploadError('network', error.message);
}
