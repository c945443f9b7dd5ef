// `MetadataStore` on an SQLite file through Bun's built-in `bun:sqlite`: the
// embedded default when the app runs on Bun, where better-sqlite3 (a Node
// addon) does not load. Same schema, queries, migrations and transaction
// rules as `@attache/sql/sqlite` (both go through `ImmediateSqliteDialect`),
// and the same durability settings: WAL, `synchronous = FULL`, a busy timeout.
// Loads only on Bun: `bun:sqlite` does not exist on Node.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MetadataStore } from '@attache/core';
import { Kysely, type SqliteDatabase, type SqliteStatement } from 'kysely';
import { createSqlMetadata } from './metadata.js';
import type { AttacheDatabase } from './schema.js';
import { ImmediateSqliteDialect, sqliteDialectInfo } from './sqlite-dialect.js';

/** The part of bun:sqlite's `Database` this entry uses (typed here, so building it needs no Bun types). */
export interface BunSqliteDatabase {
  prepare(sql: string): BunSqliteStatement;
  run(sql: string): unknown;
  close(): void;
  readonly inTransaction: boolean;
}

/** The part of bun:sqlite's `Statement` this entry uses. */
export interface BunSqliteStatement {
  /** Empty for a statement that returns no rows (Kysely asks `reader`). */
  readonly columnNames: readonly string[];
  all(...parameters: unknown[]): unknown[];
  run(...parameters: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  iterate(...parameters: unknown[]): IterableIterator<unknown>;
}

type BunSqliteDatabaseClass = new (filename: string, options?: { create?: boolean; readwrite?: boolean }) => BunSqliteDatabase;

// A computed specifier keeps TypeScript from looking for Bun's types and
// bundlers for Node from trying to resolve a module Node does not have.
const BUN_SQLITE = 'bun:sqlite';
const { Database } = (await import(/* @vite-ignore */ BUN_SQLITE).catch((error: unknown) => {
  throw new Error('@attache/sql/bun-sqlite runs on Bun only (it needs bun:sqlite); on Node use @attache/sql/sqlite', { cause: error });
})) as { Database: BunSqliteDatabaseClass };

export type BunSqliteMetadataOptions =
  /** Opens (creating it and its directory when missing) this file; `close()` closes it. */
  | { filename: string; busyTimeoutMs?: number }
  /** Uses a database you opened; `close()` leaves it open for you to close. */
  | { database: BunSqliteDatabase; busyTimeoutMs?: number };

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export function bunSqliteMetadata(options: BunSqliteMetadataOptions): MetadataStore {
  const owned = !('database' in options);
  const database = 'database' in options ? options.database : openFile(options.filename);

  // The same settings, in the same order, as the better-sqlite3 entry (sqlite.ts says why).
  database.run(`pragma busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))}`);
  database.run('pragma journal_mode = WAL');
  database.run('pragma synchronous = FULL');
  database.run('pragma foreign_keys = ON');
  // As in ./sqlite.ts: deleted rows (small blobs among them) leave no bytes behind in free pages.
  database.run('pragma secure_delete = ON');
  // As in ./sqlite.ts: savepoint and statement journals stay in memory.
  database.run('pragma temp_store = MEMORY');

  const kysely = new Kysely<AttacheDatabase>({
    dialect: new ImmediateSqliteDialect({ database: kyselyDatabase(database, owned) }, () => database.inTransaction),
  });
  return createSqlMetadata(kysely, sqliteDialectInfo);
}

function openFile(filename: string): BunSqliteDatabase {
  const inMemory = filename === '' || filename === ':memory:' || filename.startsWith('file::memory:');
  if (!inMemory) mkdirSync(dirname(filename), { recursive: true });
  return new Database(filename, { create: true, readwrite: true });
}

/**
 * Kysely's SQLite driver speaks better-sqlite3: statements with a `reader`
 * flag, parameters as one array. bun:sqlite takes them spread and tells a
 * reader by its result columns.
 */
function kyselyDatabase(database: BunSqliteDatabase, owned: boolean): SqliteDatabase {
  return {
    prepare(sql): SqliteStatement {
      const statement = database.prepare(sql);
      return {
        reader: statement.columnNames.length > 0,
        all: (parameters) => statement.all(...parameters),
        run: (parameters) => statement.run(...parameters),
        iterate: (parameters) => statement.iterate(...parameters),
      };
    },
    close() {
      // A database the caller opened stays open for the caller to close.
      if (owned) database.close();
    },
  };
}
