// The server's snake_case JSON (docs/http.md) as core's TypeScript shapes.
import type { Attachment, AttachmentHeader, LeaseInfo } from '@attache/core';

export interface AttachmentJson {
  id: string;
  name: string;
  namespace: string;
  key: string;
  size: number;
  content_type: string;
  extension: string | null;
  crc32: string;
  sha256: string;
  created_at_unix: number;
  updated_at_unix: number;
}

export interface LeaseJson {
  lease_id: string;
  txn_id: string;
  key: string;
  namespace: string;
  owner: string;
  expires_at_unix: number;
  fencing_token: number;
}

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
