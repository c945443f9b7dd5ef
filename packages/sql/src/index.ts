// The driver-free root of @attache/sql: the shared queries, schema and
// migrations on Kysely, and what each dialect needs. It imports no database
// driver and no Node module, so it loads on Node, Bun and Workers alike.
// The drivers sit behind their own entry points, each loading only its own:
//   @attache/sql/sqlite    sqliteMetadata    (better-sqlite3)
//   @attache/sql/postgres  postgresMetadata  (pg)
// A store on another driver (bun:sqlite, a Workers database) is
// `createSqlMetadata(new Kysely({ dialect }), sqliteDialectInfo)`.
export {
  createSqlMetadata,
  type GroupCommitOptions,
  type ReleaseNotifications,
  type SqlDialectInfo,
  type SqlMetadataOptions,
} from './metadata.js';
export { sqliteDialectInfo } from './sqlite-dialect.js';
export { postgresDialectInfo, RELEASE_CHANNEL } from './postgres-dialect.js';
export { attacheMigrations, attacheMigrationProvider, MIGRATION_TABLE, MIGRATION_LOCK_TABLE } from './migrations.js';
export type * from './schema.js';
