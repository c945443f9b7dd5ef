// Browser helpers of the upload page: a file's CRC-32 (the client sends it
// as X-Attachment-CRC32, so the server verifies the bytes before staging
// them) and the API's URLs.
import { API_BASE_PATH } from './api-path';

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

export function downloadUrl(attachment: { namespace: string; key: string; name: string }): string {
  const query = new URLSearchParams({ namespace: attachment.namespace, key: attachment.key, name: attachment.name });
  return `${API_BASE_PATH}/attachment?${query}`;
}
