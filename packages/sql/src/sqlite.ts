// `MetadataStore` on an SQLite file through better-sqlite3: the embedded
// default. Several processes may open the same file; WAL lets readers run
// beside the one writer, and `begin immediate` makes each transaction take
// the write lock up front, waiting up to `busy_timeout` for it.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MetadataStore } from '@attache/core';
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, type SqliteDatabase } from 'kysely';
import { createSqlMetadata } from './metadata.js';
import { requireDriver } from './require-driver.js';
import type { AttacheDatabase } from './schema.js';
import { ImmediateSqliteDialect, sqliteDialectInfo } from './sqlite-dialect.js';

// better-sqlite3 is an optional peer dependency: a PostgreSQL-only app does
// not install (compile) it, and only this entry point loads it.
const Database = requireDriver<typeof BetterSqlite3>('better-sqlite3', '@attache/sql/sqlite');

export type SqliteMetadataOptions =
  /** Opens (creating it and its directory when missing) this file; `close()` closes it. */
  | { filename: string; busyTimeoutMs?: number }
  /** Uses a database you opened; `close()` leaves it open for you to close. */
  | { database: BetterSqlite3.Database; busyTimeoutMs?: number };

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export function sqliteMetadata(options: SqliteMetadataOptions): MetadataStore {
  const owned = !('database' in options);
  const database = 'database' in options ? options.database : openFile(options.filename);

  // First, so that switching to WAL also waits for a lock held elsewhere.
  database.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))}`);
  // WAL: readers never block the writer nor the other way round.
  // `synchronous = FULL` fsyncs every commit: once `release()` has answered,
  // the commit survives a power loss too (NORMAL could lose the last ones).
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = FULL');
  database.pragma('foreign_keys = ON');

  const kysely = new Kysely<AttacheDatabase>({
    dialect: new ImmediateSqliteDialect({ database: owned ? database : borrowed(database) }, () => database.inTransaction),
  });
  return createSqlMetadata(kysely, sqliteDialectInfo);
}

function openFile(filename: string): BetterSqlite3.Database {
  const inMemory = filename === '' || filename === ':memory:' || filename.startsWith('file::memory:');
  if (!inMemory) mkdirSync(dirname(filename), { recursive: true });
  return new Database(filename);
}

/** Hands Kysely a database whose `close()` does nothing, so the caller keeps ownership. */
function borrowed(database: BetterSqlite3.Database): SqliteDatabase {
  return {
    prepare: (text) => database.prepare(text),
    close() {
      // The caller opened it, the caller closes it.
    },
  };
}
