// `MetadataStore` on an SQLite file through better-sqlite3: the embedded
// default. Several processes may open the same file; WAL lets readers run
// beside the one writer, and `begin immediate` makes each transaction take
// the write lock up front, waiting up to `busy_timeout` for it.
//
// Speed without weaker durability: the engine's transactions that queue for
// the one connection share a commit (group commit, see metadata.ts), so one
// WAL fsync acknowledges a whole batch; that fsync runs in the thread pool,
// not inside COMMIT on the event loop (core's shared-sync.ts); and statements are
// prepared once per SQL text and reused.
import { mkdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sharedSync, type MetadataStore, type SharedSyncTarget } from '@attache/core';
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, type SqliteDatabase, type SqliteStatement } from 'kysely';
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
  // Every answered commit survives a power loss: with `synchronous = FULL`
  // SQLite fsyncs the WAL inside COMMIT, blocking the event loop; on a file
  // we set NORMAL (checkpoints still sync) and fsync the WAL ourselves, off
  // the event loop, before anyone learns of the commit (see @attache/core's shared-sync.ts).
  database.pragma('journal_mode = WAL');
  const durability = database.memory ? undefined : sharedSync(walFile(`${database.name}-wal`));
  database.pragma(durability === undefined ? 'synchronous = FULL' : 'synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  // Deleted rows are overwritten with zeros: a small blob kept in the
  // database (plaintext written before encryption was enabled, or a deleted
  // attachment) must not live on in free pages.
  database.pragma('secure_delete = ON');
  // Savepoint and statement journals (each member of a group commit is a
  // savepoint) and sort space stay in memory: in a temporary file, every
  // page a savepoint first changed cost a write system call (a small write
  // transaction took 50–60 µs instead of 14), and the old content of those
  // pages, small blobs included, went to a file outside the data directory.
  database.pragma('temp_store = MEMORY');

  const inTransaction = (): boolean => database.inTransaction;
  const kysely = new Kysely<AttacheDatabase>({
    dialect: new ImmediateSqliteDialect({ database: reusingStatements(database, owned) }, inTransaction),
  });
  return createSqlMetadata(kysely, sqliteDialectInfo, {
    groupCommit: {
      inTransaction,
      yieldToEventLoop: () => new Promise((resolve) => setImmediate(resolve)),
      ...(durability === undefined ? {} : { durability }),
    },
  });
}

/**
 * The WAL file, opened at the first fsync (SQLite creates it at the first
 * write) and kept open: while a connection is open SQLite resets the WAL in
 * place but never deletes it, so the handle stays on the file SQLite writes.
 */
function walFile(path: string): SharedSyncTarget {
  let handle: FileHandle | undefined;
  return {
    async fsync() {
      if (handle === undefined) {
        try {
          // 'r+': Windows flushes only handles opened for writing; nothing is written.
          handle = await open(path, 'r+');
        } catch (error) {
          // No WAL yet: nothing was committed through it, so nothing to make durable.
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw error;
        }
      }
      await handle.sync();
    },
    async close() {
      await handle?.close();
      handle = undefined;
    },
  };
}

/** Distinct SQL texts kept prepared; the engine uses a few dozen (IN lists vary with their length). */
const MAX_CACHED_STATEMENTS = 256;

/**
 * Hands Kysely the database with `prepare()` cached by SQL text: preparing
 * is a good part of a small query's cost, and a cycle runs ~50 statements.
 * Kysely runs each statement to completion synchronously (`all`/`run`), so
 * one prepared statement is never in use twice at once. `close()` closes the
 * database only when we opened it (`owned`); otherwise the caller does.
 */
function reusingStatements(database: BetterSqlite3.Database, owned: boolean): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    prepare(text) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = database.prepare(text);
        if (statements.size >= MAX_CACHED_STATEMENTS) statements.clear();
        statements.set(text, statement);
      }
      return statement;
    },
    close() {
      statements.clear();
      if (owned) database.close();
    },
  };
}

function openFile(filename: string): BetterSqlite3.Database {
  const inMemory = filename === '' || filename === ':memory:' || filename.startsWith('file::memory:');
  if (!inMemory) mkdirSync(dirname(filename), { recursive: true });
  return new Database(filename);
}
