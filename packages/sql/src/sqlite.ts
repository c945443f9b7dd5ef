// `MetadataStore` on an SQLite file through better-sqlite3: the embedded
// default. Several processes may open the same file; WAL lets readers run
// beside the one writer, and `begin immediate` makes each transaction take
// the write lock up front, waiting up to `busy_timeout` for it.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MetadataStore } from '@attache/core';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Driver,
  type DialectAdapter,
  type SqliteDatabase,
  type SqliteDialectConfig,
} from 'kysely';
import { createSqlMetadata, sqliteDialectInfo } from './metadata.js';
import type { AttacheDatabase } from './schema.js';

export type SqliteMetadataOptions =
  /** Opens (creating it and its directory when missing) this file; `close()` closes it. */
  | { filename: string; busyTimeoutMs?: number }
  /** Uses a database you opened; `close()` leaves it open for you to close. */
  | { database: Database.Database; busyTimeoutMs?: number };

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
    dialect: new ImmediateSqliteDialect({ database: owned ? database : borrowed(database) }, database),
  });
  return createSqlMetadata(kysely, sqliteDialectInfo);
}

function openFile(filename: string): Database.Database {
  const inMemory = filename === '' || filename === ':memory:' || filename.startsWith('file::memory:');
  if (!inMemory) mkdirSync(dirname(filename), { recursive: true });
  return new Database(filename);
}

/** Hands Kysely a database whose `close()` does nothing, so the caller keeps ownership. */
function borrowed(database: Database.Database): SqliteDatabase {
  return {
    prepare: (text) => database.prepare(text),
    close() {
      // The caller opened it, the caller closes it.
    },
  };
}

/**
 * Kysely's SQLite dialect, with three changes:
 * - transactions start with `begin immediate`. A plain (deferred) `begin`
 *   takes the write lock only at the first write; if another process wrote
 *   in between, SQLite fails the upgrade at once (SQLITE_BUSY) without
 *   waiting for `busy_timeout`. Taking it up front makes writers queue.
 * - migrations run in one transaction (SQLite has transactional DDL; Kysely's
 *   adapter just does not claim it), so two processes starting together
 *   cannot both apply the same migration.
 * - rollback is skipped when SQLite has already rolled the transaction back
 *   itself (it does after SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM): a
 *   `rollback` then fails with "no transaction is active", an error that
 *   would hide the disk-full one that matters.
 *
 * Within one process, Kysely's SQLite driver already serializes
 * transactions: it has a single connection behind a mutex held from
 * `begin` to `commit`/`rollback`.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  readonly #database: Database.Database;

  constructor(config: SqliteDialectConfig, database: Database.Database) {
    super(config);
    this.#config = config;
    this.#database = database;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, this.#database);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  readonly #database: Database.Database;

  constructor(config: SqliteDialectConfig, database: Database.Database) {
    super(config);
    this.#database = database;
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (!this.#database.inTransaction) return;
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
