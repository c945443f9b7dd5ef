// What every SQLite driver shares, with no driver imported: the dialect
// info for `createSqlMetadata` and Kysely's SQLite dialect with attache's
// transaction rules. The better-sqlite3 entry (`sqlite.ts`) wires a
// database into it; an entry for another driver with a synchronous
// `prepare()` (bun:sqlite) would do the same with its own database.
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type SqliteDialectConfig,
} from 'kysely';
import type { SqlDialectInfo } from './metadata.js';

// better-sqlite3 (and bun:sqlite) put SQLite's extended result code on `error.code`.
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL|NOLFS)/;

export const sqliteDialectInfo: SqlDialectInfo = {
  name: 'sqlite',
  nameCollation: null,
  lockKeyForUpdate: false,
  isUnavailable: (error) => SQLITE_UNAVAILABLE.test(String((error as { code?: unknown } | null)?.code ?? '')),
};

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
 *   would hide the disk-full one that matters. `inTransaction` asks the
 *   driver (better-sqlite3 and bun:sqlite both have `database.inTransaction`).
 *
 * Within one process, Kysely's SQLite driver already serializes
 * transactions: it has a single connection behind a mutex held from
 * `begin` to `commit`/`rollback`.
 */
export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  readonly #inTransaction: () => boolean;

  constructor(config: SqliteDialectConfig, inTransaction: () => boolean) {
    super(config);
    this.#config = config;
    this.#inTransaction = inTransaction;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, this.#inTransaction);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  readonly #inTransaction: () => boolean;

  constructor(config: SqliteDialectConfig, inTransaction: () => boolean) {
    super(config);
    this.#inTransaction = inTransaction;
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (!this.#inTransaction()) return;
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
