// Versioned schema migrations, kept in code so no file is read at run time
// (bundlers, edge runtimes). Names sort in apply order; never edit a shipped
// migration, append a new one.
//
// The DDL is the same on SQLite and PostgreSQL: `bigint` is a 64-bit integer
// on PostgreSQL and has INTEGER affinity on SQLite; partial indexes exist on
// both.
import { PostgresAdapter, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

export const MIGRATION_TABLE = 'attache_migrations';
export const MIGRATION_LOCK_TABLE = 'attache_migrations_lock';

// Migrations must not depend on today's table types, which will change.
type AnyDatabase = Kysely<unknown>;

export const attacheMigrations: Readonly<Record<string, Migration>> = {
  '0001_initial': {
    async up(db: AnyDatabase): Promise<void> {
      await db.schema
        .createTable('attache_keys')
        .addColumn('namespace', 'text', (column) => column.notNull())
        .addColumn('key', 'text', (column) => column.notNull())
        .addColumn('fencing_token', 'bigint', (column) => column.notNull())
        .addColumn('lease_id', 'text')
        .addPrimaryKeyConstraint('attache_keys_pk', ['namespace', 'key'])
        .execute();

      await db.schema
        .createTable('attache_txns')
        .addColumn('txn_id', 'text', (column) => column.notNull().primaryKey())
        .addColumn('state', 'text', (column) => column.notNull())
        .addColumn('created_at', 'bigint', (column) => column.notNull())
        .addColumn('updated_at', 'bigint', (column) => column.notNull())
        .execute();

      await db.schema
        .createTable('attache_leases')
        .addColumn('lease_id', 'text', (column) => column.notNull().primaryKey())
        .addColumn('namespace', 'text', (column) => column.notNull())
        .addColumn('key', 'text', (column) => column.notNull())
        .addColumn('txn_id', 'text', (column) => column.notNull())
        .addColumn('owner', 'text', (column) => column.notNull())
        .addColumn('fencing_token', 'bigint', (column) => column.notNull())
        .addColumn('expires_at', 'bigint', (column) => column.notNull())
        .addColumn('state', 'text', (column) => column.notNull())
        .addColumn('created_at', 'bigint', (column) => column.notNull())
        .execute();
      await db.schema.createIndex('attache_leases_txn_idx').on('attache_leases').column('txn_id').execute();
      // The sweeper's "active leases past their expiry, oldest first".
      await db.schema
        .createIndex('attache_leases_state_expires_idx')
        .on('attache_leases')
        .columns(['state', 'expires_at'])
        .execute();

      await db.schema
        .createTable('attache_attachments')
        .addColumn('version_id', 'text', (column) => column.notNull().primaryKey())
        .addColumn('attachment_id', 'text', (column) => column.notNull())
        .addColumn('namespace', 'text', (column) => column.notNull())
        .addColumn('key', 'text', (column) => column.notNull())
        .addColumn('name', 'text', (column) => column.notNull())
        .addColumn('state', 'text', (column) => column.notNull())
        .addColumn('txn_id', 'text')
        .addColumn('size', 'bigint', (column) => column.notNull())
        .addColumn('content_type', 'text', (column) => column.notNull())
        .addColumn('extension', 'text')
        .addColumn('crc32', 'text', (column) => column.notNull())
        .addColumn('sha256', 'text', (column) => column.notNull())
        .addColumn('blob_path', 'text', (column) => column.notNull())
        .addColumn('key_id', 'text')
        .addColumn('created_at', 'bigint', (column) => column.notNull())
        .addColumn('updated_at', 'bigint', (column) => column.notNull())
        .execute();
      // One visible attachment per name and key; a commit must retire the
      // old row before promoting a staged one of the same name.
      await db.schema
        .createIndex('attache_attachments_committed_name_uq')
        .on('attache_attachments')
        .columns(['namespace', 'key', 'name'])
        .unique()
        .where(sql<boolean>`state = 'committed'`)
        .execute();
      // One pending write (staged upload or tombstone) per name, key and transaction.
      await db.schema
        .createIndex('attache_attachments_pending_name_uq')
        .on('attache_attachments')
        .columns(['txn_id', 'namespace', 'key', 'name'])
        .unique()
        .where(sql<boolean>`state <> 'committed'`)
        .execute();
      // Look-ups by key (listings, find by name) that also read pending rows,
      // which the partial indexes above cannot serve.
      await db.schema
        .createIndex('attache_attachments_scope_idx')
        .on('attache_attachments')
        .columns(['namespace', 'key', 'name'])
        .execute();
      await db.schema
        .createIndex('attache_attachments_attachment_id_idx')
        .on('attache_attachments')
        .column('attachment_id')
        .execute();
      await db.schema.createIndex('attache_attachments_txn_idx').on('attache_attachments').column('txn_id').execute();
      await db.schema
        .createIndex('attache_attachments_blob_path_idx')
        .on('attache_attachments')
        .column('blob_path')
        .execute();

      await db.schema
        .createTable('attache_garbage')
        .addColumn('blob_path', 'text', (column) => column.notNull().primaryKey())
        .addColumn('enqueued_at', 'bigint', (column) => column.notNull())
        .execute();
      await db.schema
        .createIndex('attache_garbage_enqueued_idx')
        .on('attache_garbage')
        .columns(['enqueued_at', 'blob_path'])
        .execute();
    },
  },
  // Resumable uploads (tus): one row per upload, one per recorded part.
  '0002_uploads': {
    async up(db: AnyDatabase): Promise<void> {
      await db.schema
        .createTable('attache_uploads')
        .addColumn('upload_id', 'text', (column) => column.notNull().primaryKey())
        .addColumn('state', 'text', (column) => column.notNull())
        .addColumn('length', 'bigint', (column) => column.notNull())
        .addColumn('offset', 'bigint', (column) => column.notNull())
        .addColumn('crc32', 'text', (column) => column.notNull())
        .addColumn('name', 'text', (column) => column.notNull())
        .addColumn('content_type', 'text', (column) => column.notNull())
        .addColumn('metadata', 'text', (column) => column.notNull())
        .addColumn('namespace', 'text', (column) => column.notNull())
        .addColumn('key', 'text')
        .addColumn('lease_id', 'text')
        .addColumn('txn_id', 'text')
        .addColumn('fencing_token', 'bigint')
        .addColumn('attachment_id', 'text')
        .addColumn('expires_at', 'bigint', (column) => column.notNull())
        .addColumn('created_at', 'bigint', (column) => column.notNull())
        .addColumn('updated_at', 'bigint', (column) => column.notNull())
        .execute();
      await db.schema.createIndex('attache_uploads_expires_idx').on('attache_uploads').column('expires_at').execute();
      await db.schema.createIndex('attache_uploads_txn_idx').on('attache_uploads').column('txn_id').execute();
      await db.schema
        .createTable('attache_upload_parts')
        .addColumn('upload_id', 'text', (column) => column.notNull())
        .addColumn('start', 'bigint', (column) => column.notNull())
        .addColumn('size', 'bigint', (column) => column.notNull())
        .addColumn('blob_path', 'text', (column) => column.notNull())
        .addColumn('key_id', 'text')
        .addPrimaryKeyConstraint('attache_upload_parts_pk', ['upload_id', 'start'])
        .execute();
    },
  },
  // Small blobs kept inline (core's inline-blobs.ts): the bytes, and their
  // size so listings and stats need not read them.
  '0003_blob_data': {
    async up(db: AnyDatabase): Promise<void> {
      const binary = db.getExecutor().adapter instanceof PostgresAdapter ? 'bytea' : 'blob';
      await db.schema
        .createTable('attache_blob_data')
        .addColumn('path', 'text', (column) => column.notNull().primaryKey())
        .addColumn('data', binary, (column) => column.notNull())
        .addColumn('size', 'bigint', (column) => column.notNull())
        .addColumn('created_at', 'bigint', (column) => column.notNull())
        .execute();
    },
  },
};

export const attacheMigrationProvider: MigrationProvider = {
  async getMigrations() {
    return { ...attacheMigrations };
  },
};
