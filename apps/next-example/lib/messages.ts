// What the page tells a person for each error code it can meet (API.md §3).
import { formatBytes } from './format';

export function uploadErrorMessage(fileName: string, fileSize: number, code: string, detail: string, maxBytes: number): string {
  switch (code) {
    case 'attachment_too_large':
      return `${fileName} is too large: ${formatBytes(fileSize)}, and this server accepts files up to ${formatBytes(maxBytes)}. Nothing of it was kept.`;
    case 'checksum_mismatch':
      return `${fileName} arrived damaged: its checksum did not match the bytes the server received. Nothing of it was kept; try again.`;
    case 'network':
      // A server that refuses a large body early may close the connection
      // before the browser has read its answer: say what most likely happened.
      return fileSize > maxBytes
        ? `${fileName} was cut off before the server answered; at ${formatBytes(fileSize)} it is over this server's limit of ${formatBytes(maxBytes)}. Nothing of it was kept.`
        : `${fileName} was not uploaded: ${detail}.`;
    default:
      return leaseErrorMessage(code) ?? `${fileName} was not uploaded (${code}${detail ? `: ${detail}` : ''}).`;
  }
}

/** Messages for lease failures, whichever call met them; undefined for other codes. */
export function leaseErrorMessage(code: string): string | undefined {
  switch (code) {
    case 'lease_expired':
      return 'The lease expired before it was released, so its staged files were discarded. Pick the files again to start a new batch.';
    case 'fencing_mismatch':
    case 'lease_required':
      return 'This lease is no longer valid (someone else acquired the key). Its staged files were discarded; pick the files again.';
    case 'waiting':
      return 'Someone else holds the lease on this key right now. Try again in a moment, or use another key.';
    default:
      return undefined;
  }
}
