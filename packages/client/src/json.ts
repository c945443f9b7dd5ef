// The server's snake_case JSON (docs/http.md) as core's TypeScript shapes.
import type { Attachment, AttachmentHeader, AttachmentJson, LeaseInfo, LeaseJson } from '@attache/core';

export type { AttachmentJson, LeaseJson };

export function attachmentOf(json: AttachmentJson): Attachment {
  return {
    id: json.id,
    name: json.name,
    namespace: json.namespace,
    key: json.key,
    size: json.size,
    contentType: json.content_type,
    extension: json.extension,
    crc32: json.crc32,
    sha256: json.sha256,
    createdAt: new Date(json.created_at_unix * 1000),
    updatedAt: new Date(json.updated_at_unix * 1000),
  };
}

export function leaseInfoOf(json: LeaseJson): LeaseInfo {
  return {
    leaseId: json.lease_id,
    txnId: json.txn_id,
    fencingToken: json.fencing_token,
    expiresAt: new Date(json.expires_at_unix * 1000),
    namespace: json.namespace,
    key: json.key,
    owner: json.owner,
  };
}

export function headerOf(attachment: Attachment): AttachmentHeader {
  return { attachmentId: attachment.id, mimeType: attachment.contentType, extension: attachment.extension, hash: attachment.crc32 };
}
