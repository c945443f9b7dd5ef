export { sqliteMetadata, type SqliteMetadataOptions } from './sqlite.js';
export { postgresMetadata, postgresDialectInfo, RELEASE_CHANNEL, type PostgresMetadataOptions } from './postgres.js';
export { createSqlMetadata, sqliteDialectInfo, type ReleaseNotifications, type SqlDialectInfo } from './metadata.js';
export { attacheMigrations, attacheMigrationProvider, MIGRATION_TABLE, MIGRATION_LOCK_TABLE } from './migrations.js';
export type * from './schema.js';
