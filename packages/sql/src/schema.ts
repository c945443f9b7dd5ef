// Kysely table types of the attache schema (see migrations.ts for the DDL).
// Column names are snake_case; metadata.ts maps rows to the port's shapes.
import type { ColumnType } from 'kysely';

/**
 * A 64-bit integer column. PostgreSQL's driver returns `bigint` columns as
 * strings (to stay exact beyond 2^53), SQLite's as numbers; every read goes
 * through `Number()`.
 */
export type Int64 = ColumnType<number | string, number, number>;

export interface KeysTable {
  namespace: string;
  key: string;
  fencing_token: Int64;
  lease_id: string | null;
}

export interface LeasesTable {
  lease_id: string;
  namespace: string;
  key: string;
  txn_id: string;
  owner: string;
  fencing_token: Int64;
  expires_at: Int64;
  state: string;
  created_at: Int64;
}

export interface TxnsTable {
  txn_id: string;
  state: string;
  created_at: Int64;
  updated_at: Int64;
}

export interface AttachmentsTable {
  version_id: string;
  attachment_id: string;
  namespace: string;
  key: string;
  name: string;
  state: string;
  txn_id: string | null;
  size: Int64;
  content_type: string;
  extension: string | null;
  crc32: string;
  sha256: string;
  blob_path: string;
  key_id: string | null;
  created_at: Int64;
  updated_at: Int64;
}

export interface GarbageTable {
  blob_path: string;
  enqueued_at: Int64;
}

export interface UploadsTable {
  upload_id: string;
  state: string;
  length: Int64;
  offset: Int64;
  crc32: string;
  name: string;
  content_type: string;
  metadata: string;
  namespace: string;
  key: string | null;
  lease_id: string | null;
  txn_id: string | null;
  fencing_token: Int64 | null;
  attachment_id: string | null;
  expires_at: Int64;
  created_at: Int64;
  updated_at: Int64;
}

export interface UploadPartsTable {
  upload_id: string;
  start: Int64;
  size: Int64;
  blob_path: string;
  key_id: string | null;
}

/** Small blobs kept inline (core's inline-blobs.ts). */
export interface BlobDataTable {
  path: string;
  data: Uint8Array;
  size: Int64;
  created_at: Int64;
}

export interface AttacheDatabase {
  attache_keys: KeysTable;
  attache_leases: LeasesTable;
  attache_txns: TxnsTable;
  attache_attachments: AttachmentsTable;
  attache_garbage: GarbageTable;
  attache_uploads: UploadsTable;
  attache_upload_parts: UploadPartsTable;
  attache_blob_data: BlobDataTable;
}
